"""Networks only: nothing here imports the rest of genlab."""
