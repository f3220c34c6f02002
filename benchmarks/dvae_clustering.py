"""Run the dvae experiments over seeds; print the study's table per dataset and write JSON.

    python benchmarks/dvae_clustering.py --preset quick --seeds 0 1 2 [--datasets mnist fashion_mnist]
        [--quantizers vq gumbel] [--set data.train_limit=20000 ...] [--threads 1] [--out FILE]
    python benchmarks/dvae_clustering.py --compare-representations RUN_DIR... [--representations quantized
        onehot histogram] [--embeddings umap spectral]
    python benchmarks/dvae_clustering.py --neighbour-purity RUN_DIR...
    python benchmarks/dvae_clustering.py --tabulate RUN_DIR...   # the table and targets of finished runs

Columns: clustering accuracy (Hungarian, K = cluster.k) of the codes, of the continuous autoencoder's
vectors and of raw pixels, each through the same embedding then KMeans and then a Gaussian mixture; plain
KMeans on pixels and on codes; NMI, ARI; the pseudo-label and true-label classifiers' test accuracy; the K
the silhouette picks; reconstruction PSNR and codebook use; mean +- standard deviation (min-max) over seeds. Each run is a normal genlab run under --runs-dir, with its report.

On a shared CPU, OpenMP threads spin-wait for each other and a run can take ten times longer with two
threads than with one; so this script uses passive waiting and --threads 1 unless told otherwise.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # read when OpenMP starts: before torch is imported

import argparse  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import torch  # noqa: E402

from genlab.config import parse_assignments  # noqa: E402
from genlab.errors import GenlabError  # noqa: E402
from genlab.eval import targets as t  # noqa: E402
from genlab.eval.targets import verdict  # noqa: E402
from genlab.experiments.base import machine_info  # noqa: E402
from genlab.experiments.runner import start_run  # noqa: E402

COLUMNS = {  # summary metric -> table heading
    "cluster_hungarian_accuracy": "codes, embedded + KMeans",
    "cluster_gmm_hungarian_accuracy": "codes, embedded + GMM",
    "ae_embedded_hungarian_accuracy": "continuous AE, embedded + KMeans",
    "ae_embedded_gmm_hungarian_accuracy": "continuous AE, embedded + GMM",
    "pixels_embedded_hungarian_accuracy": "pixels, embedded + KMeans",
    "pixels_embedded_gmm_hungarian_accuracy": "pixels, embedded + GMM",
    "pixels_plain_hungarian_accuracy": "pixels, plain KMeans",
    "codes_plain_hungarian_accuracy": "codes, plain KMeans",
    "cluster_nmi": "codes: NMI",
    "cluster_ari": "codes: ARI",
    "pseudo_label_classifier_accuracy": "pseudo-label clf acc",
    "true_label_classifier_accuracy": "true-label clf acc",
    "best_silhouette_k": "K of the best silhouette",
    "test_psnr": "PSNR (dB)",
    "autoencoder_test_psnr": "continuous AE PSNR (dB)",
    "test_perplexity": "codebook perplexity",
    "test_codes_used_fraction": "codes used",
}


def spread(values: list[float], digits: int = 3) -> str:
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return (f"{statistics.mean(values):.{digits}f} +- {statistics.stdev(values):.{digits}f} "
            f"({min(values):.{digits}f}-{max(values):.{digits}f})")


def targets(dataset: str, rows: list[dict]) -> list[str]:
    """The issue's targets for the quick preset, checked on the mean over seeds."""
    mean = lambda key: statistics.mean(r[key] for r in rows)  # noqa: E731
    codes, pixels, embedded, used, minutes = (mean(key) for key in (
        "cluster_hungarian_accuracy", "pixels_plain_hungarian_accuracy", "pixels_embedded_hungarian_accuracy",
        "test_codes_used_fraction", "minutes"))
    bar = t.DVAE_CLUSTERING[dataset]
    checks = [(f"code clustering >= {bar.threshold:.2f} ({codes:.3f})", bar, codes),
              (f"codes {codes:.3f} beat pixels through the same pipeline {embedded:.3f} by >= "
               f"{t.DVAE_CODES_OVER_EMBEDDED_PIXELS.threshold:.2f}", t.DVAE_CODES_OVER_EMBEDDED_PIXELS,
               codes - embedded),
              (f"code clustering {codes:.3f} > pixel KMeans {pixels:.3f}", t.DVAE_CODES_OVER_PIXELS, codes - pixels),
              (f"at least {t.DVAE_CODES_USED.threshold:.0%} of codes used ({used:.0%})", t.DVAE_CODES_USED, used),
              (f"within {t.DVAE_MINUTES.threshold:.0f} min per run ({minutes:.1f} min)", t.DVAE_MINUTES, minutes)]
    if dataset == "mnist":
        psnr, gap = mean("test_psnr"), mean("true_label_classifier_accuracy") - mean("pseudo_label_classifier_accuracy")
        checks += [(f"pseudo-label classifier within {t.DVAE_MNIST_PSEUDO_LABEL_GAP.threshold:.0%} of the true-label "
                    f"one ({gap:.3f} below)", t.DVAE_MNIST_PSEUDO_LABEL_GAP, gap),
                   (f"PSNR >= {t.DVAE_MNIST_PSNR.threshold:g} dB ({psnr:.1f})", t.DVAE_MNIST_PSNR, psnr)]
    return [f"{verdict((target, value))}: {text}" for text, target, value in checks]


def table_row(summary: dict, dataset: str, quantizer: str, minutes: float, run_path: Path) -> dict:
    """A run's row of the table: its summary's columns, its minutes and where it lies."""
    return {"dataset": dataset, "quantizer": quantizer, "seed": summary["seed"],
            **{key: summary["metrics"].get(key) for key in COLUMNS},
            "minutes": minutes, "run_dir": str(run_path), "notes": summary["notes"]}


def tabulated(run_dir: str) -> dict:
    """A finished run's row of the table, from its summary; its minutes are the run's own wall time, and
    ``config_is_the_preset`` says whether it ran its preset unchanged (so that the targets apply)."""
    from genlab.config import to_dict
    from genlab.experiments.registry import get_experiment
    from genlab.train.run_dir import RunDir

    run = RunDir.open(run_dir)
    summary, stored = run.read_summary(), run.read_config()
    if summary is None or summary["status"] != "complete":
        raise GenlabError(f"{run_dir} is not a finished run", "finish it with `genlab resume` or leave it out")
    config = stored["config"]
    preset = to_dict(get_experiment(stored["experiment"]).config(stored["preset"], seed=config["seed"]))
    return {**table_row(summary, config["data"]["dataset"], config["model"]["quantizer"],
                        summary["wall_time_s"] / 60, run.path.resolve()),
            "preset": summary["preset"], "config_is_the_preset": config == preset}


def _trained_dvae(run_dir: str):
    """A finished run's directory, config, training images, discrete VAE and its checkpoint state."""
    from genlab.data.datasets import load
    from genlab.experiments.base import trained_state
    from genlab.experiments.dvae import DVAEConfig
    from genlab.train.dvae import dvae_from_config

    run, cfg, state = trained_state(run_dir, DVAEConfig, "cpu")
    data = load(cfg.data.dataset, "train")
    data = data.subset(torch.arange(min(cfg.data.train_limit or len(data), len(data))))
    model = dvae_from_config(cfg.model, data.shape[0], data.shape[-1])
    model.load_state_dict(state["trainer"]["model"])
    return run, cfg, data, model, state


def _trained_autoencoder(run, cfg, state: dict, data):
    """The run's continuous autoencoder baseline (its ``autoencoder`` phase), or None if it trained none."""
    from genlab.train.checkpoint import CheckpointStore
    from genlab.train.dvae import dvae_from_config
    from genlab.train.run_dir import RunDir

    folder = RunDir(run.path / "autoencoder").checkpoints
    phase = CheckpointStore(folder).latest({**state["meta"], "phase": "autoencoder"}) if folder.is_dir() else None
    if phase is None:
        return None
    model = dvae_from_config(cfg.model, data.shape[0], data.shape[-1], quantizer="none")
    model.load_state_dict(phase["trainer"]["model"])
    return model


def neighbour_purity(run_dirs: list[str], ks: tuple[int, ...] = (1, 5, 10, 20)) -> list[dict]:
    """The share of each training image's k nearest neighbours (Euclidean, in the 50 principal components the
    study's neighbour graph is built on) that carry its class, for the codes, the continuous autoencoder's
    vectors and raw pixels: the ceiling of every clustering that reads only that neighbour graph."""
    from genlab.eval.code_clusters import EmbeddingSpec, code_representation, embed, pixel_representation
    from genlab.eval.neighbour_heads import nearest_neighbours
    from genlab.train.dvae import encode_dataset, encode_latents

    rows = []
    for run_dir in run_dirs:
        run, cfg, data, model, state = _trained_dvae(run_dir)
        autoencoder = _trained_autoencoder(run, cfg, state, data)
        labels, cpu = data.labels.numpy(), torch.device("cpu")
        inputs = {"codes": code_representation(encode_dataset(model, data, cpu).numpy(),
                                               model.quantizer.codebook.detach().numpy(), "quantized"),
                  "pixels": pixel_representation(data.images.numpy())}
        if autoencoder is not None:
            inputs["autoencoder"] = encode_latents(autoencoder, data, cpu).flatten(1).numpy()
        for name, features in inputs.items():
            reduced = embed(features, EmbeddingSpec("pca", dim=cfg.cluster.pca_dim), cfg.seed)
            neighbours = nearest_neighbours(reduced, max(ks))
            same = labels[neighbours] == labels[:, None]
            row = {"run_dir": str(run.path), "dataset": cfg.data.dataset, "seed": cfg.seed,
                   "contrastive_weight": cfg.train.contrastive_weight,
                   "contrastive_augment": cfg.train.contrastive_augment, "input": name,
                   **{f"purity_at_{k}": float(same[:, :k].mean()) for k in ks}}
            rows.append(row)
            print(f"{cfg.data.dataset} seed {cfg.seed} {name:11s}: " +
                  ", ".join(f"k={k} {row[f'purity_at_{k}']:.4f}" for k in ks), flush=True)
    return rows


def compare_representations(run_dirs: list[str], representations: list[str], embeddings: list[str],
                            pipeline_seeds: list[int] | None = None, cluster_sets: dict | None = None) -> list[dict]:
    """Cluster the codes of finished runs' discrete VAEs as each representation (or raw pixels, ``pixels``)
    through each embedding (the run's other cluster settings, as changed by ``cluster_sets``; KMeans and the
    Gaussian mixture at K = cluster.k): which to choose. ``pipeline_seeds`` reseed the embedding, KMeans and
    the mixture alone (default: the run's seed), which shows how much of a difference the clustering step's
    own randomness makes. Pixels do not depend on the model, so they are clustered once for each dataset and
    cluster settings."""
    from threadpoolctl import threadpool_limits

    from genlab.config import override
    from genlab.eval.clustering import clustering_report
    from genlab.eval.code_clusters import code_representation, embed, gaussian_mixture, kmeans, pixel_representation
    from genlab.train.dvae import encode_dataset

    rows, pixels_done = [], set()
    for run_dir in run_dirs:
        run, cfg, data, model, _ = _trained_dvae(run_dir)
        cfg = override(cfg, cluster_sets or {})
        codes = encode_dataset(model, data, torch.device("cpu")).numpy()
        codebook = model.quantizer.codebook.detach().numpy()
        labels, c = data.labels.numpy(), cfg.cluster
        for representation in representations:
            if representation == "pixels":
                pixels = (cfg.data.dataset, len(data), repr(c))
                if pixels in pixels_done:
                    continue
                pixels_done.add(pixels)
            features = (pixel_representation(data.images.numpy()) if representation == "pixels"
                        else code_representation(codes, codebook, representation))
            for embedding in embeddings:
                spec = c.embedding_spec(embedding)
                for seed in pipeline_seeds or [cfg.seed]:
                    started = time.perf_counter()
                    with threadpool_limits(c.threads or None):
                        points = embed(features, spec, seed)
                        row = {"run_dir": str(run.path), "dataset": cfg.data.dataset, "seed": cfg.seed,
                               "contrastive_augment": cfg.train.contrastive_augment,
                               "contrastive_weight": cfg.train.contrastive_weight,
                               "representation": representation, "embedding": embedding,
                               "embed_dim": c.embed_dim, "neighbors": c.neighbors, "pipeline_seed": seed,
                               "kmeans": clustering_report(labels, kmeans(points, c.k, seed, c.n_init))[
                                   "hungarian_accuracy"],
                               "gmm": clustering_report(labels, gaussian_mixture(points, c.k, seed, c.gmm_n_init))[
                                   "hungarian_accuracy"],
                               "seconds": time.perf_counter() - started}
                    rows.append(row)
                    print(f"{cfg.data.dataset} seed {cfg.seed} {representation:9s} {embedding:8s} "
                          f"({c.embed_dim} dims, {c.neighbors} neighbours, pipeline seed {seed}): KMeans "
                          f"{row['kmeans']:.3f}, GMM {row['gmm']:.3f} ({row['seconds']:.0f} s)", flush=True)
    return rows


def new_runs(args: argparse.Namespace, sets: dict) -> list[dict]:
    """Run every dataset, quantizer and seed asked for; a row of the table each, its minutes timed here."""
    results = []
    for dataset in args.datasets:
        for quantizer in args.quantizers:
            for seed in args.seeds:
                started = time.perf_counter()
                run = start_run(f"dvae-{dataset}", args.preset, {**sets, "model.quantizer": quantizer}, seed=seed,
                                device=args.device, runs_dir=args.runs_dir, progress=False)
                row = table_row(run.read_summary(), dataset, quantizer, (time.perf_counter() - started) / 60,
                                run.path)
                results.append(row)
                print(f"{dataset} {quantizer} seed {seed}: code clustering {row['cluster_hungarian_accuracy']:.3f}, "
                      f"pixels {row['pixels_plain_hungarian_accuracy']:.3f}, pseudo-label classifier "
                      f"{row['pseudo_label_classifier_accuracy']:.3f}, {row['minutes']:.1f} min", flush=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="quick")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--datasets", nargs="+", default=["mnist", "fashion_mnist"])
    parser.add_argument("--quantizers", nargs="+", default=["vq"], choices=["vq", "gumbel"])
    parser.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                        help="config override for every run (e.g. a reduced data.train_limit)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (0: torch's default)")
    parser.add_argument("--runs-dir", default="runs/benchmarks")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--out", default=None,
                        help="JSON output (default: benchmarks/results/dvae_clustering-<preset>.json, "
                             "-<preset>-tabulated.json with --tabulate)")
    parser.add_argument("--compare-representations", nargs="+", default=None, metavar="RUN_DIR",
                        help="instead of new runs: cluster these finished runs' codes in every representation")
    parser.add_argument("--tabulate", nargs="+", default=None, metavar="RUN_DIR",
                        help="no training: the table (and, for quick runs, the targets) of finished runs, each "
                             "run's minutes its own wall time")
    parser.add_argument("--neighbour-purity", nargs="+", default=None, metavar="RUN_DIR",
                        help="instead of new runs: how often the nearest neighbours of these finished runs' codes, "
                             "autoencoder vectors and pixels share their class")
    parser.add_argument("--representations", nargs="+", default=["quantized", "onehot", "histogram"],
                        help="with --compare-representations: code representations, and pixels for raw pixels")
    parser.add_argument("--pipeline-seeds", type=int, nargs="+", default=None,
                        help="with --compare-representations: seeds of the embedding and clustering alone "
                             "(default: each run's seed); --set cluster.KEY=VALUE changes the runs' cluster settings")
    parser.add_argument("--embeddings", nargs="+", default=["umap"])
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.compare_representations or args.neighbour_purity:
        if args.neighbour_purity:
            rows, name = neighbour_purity(args.neighbour_purity), "neighbour-purity"
        else:
            rows = compare_representations(args.compare_representations, args.representations, args.embeddings,
                                           args.pipeline_seeds, parse_assignments(args.sets))
            name = "representations"
        out = Path(args.out or Path(__file__).parent / "results" / f"dvae_clustering-{name}.json")
        out.write_text(json.dumps({"threads": torch.get_num_threads(), "machine": machine_info(torch.device("cpu")),
                                   "results": rows}, indent=2) + "\n")
        print(f"\nwritten: {out}")
        return
    sets = parse_assignments(args.sets)

    if args.tabulate:
        results = [tabulated(run_dir) for run_dir in args.tabulate]
        preset = results[0]["preset"]
    else:
        results, preset = new_runs(args, sets), args.preset

    lines = []
    for dataset in dict.fromkeys(r["dataset"] for r in results):
        for quantizer in dict.fromkeys(r["quantizer"] for r in results):
            rows = [r for r in results if r["dataset"] == dataset and r["quantizer"] == quantizer]
            lines += ["", f"### {dataset}, {quantizer} ({preset} preset, {len(rows)} seed(s): "
                          f"mean +- sd (min-max))", "", "| metric | value |", "| --- | --- |"]
            lines += [f"| {heading} | {spread([r[key] for r in rows], 0 if key == 'best_silhouette_k' else 3)} |"
                      for key, heading in COLUMNS.items() if all(r[key] is not None for r in rows)]
            lines += [f"| minutes per run | {spread([r['minutes'] for r in rows], 1)} |", ""]
            if preset == "quick" and not sets and all(r.get("config_is_the_preset", True) for r in rows):
                lines += [f"- {check}" for check in targets(dataset, rows)]
    print("\n".join(lines))
    # Tabulated runs get a name of their own, so that a look at some runs never overwrites the new runs' results.
    default = f"dvae_clustering-{preset}{'-tabulated' if args.tabulate else ''}.json"
    out = Path(args.out or Path(__file__).parent / "results" / default)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"preset": preset, "sets": sets, "threads": torch.get_num_threads(),
                               "machine": machine_info(torch.device("cpu")), "results": results,
                               "table": lines}, indent=2) + "\n")
    print(f"\nwritten: {out}")


if __name__ == "__main__":
    try:
        main()
    except GenlabError as error:  # a run directory or setting the user can fix: its message, no traceback
        raise SystemExit(f"error: {error}")
