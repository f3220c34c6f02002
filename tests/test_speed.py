"""The sampler's precision and layout chosen by measurement: the decision, the cache, the override.

Timing is faked throughout: ``measure`` takes a timer, and the run functions here advance it by a cost
per candidate, so no test depends on how fast this machine is.
"""

from __future__ import annotations

import json

import pytest
import torch

from genlab.cli import main
from genlab.devices import ISA_LIMIT_VARIABLES, host_kind, onednn_isa_limit
from genlab.nets.energy import ResNetEnergy
from genlab.sampling import SamplerConfig, langevin, precision, run_chain
from genlab.sampling.precision import Candidate, Decision, decide, measure

FP32, FP32_CL, BF16, BF16_CL = (Candidate("fp32", False), Candidate("fp32", True), Candidate("bf16", False),
                               Candidate("bf16", True))


def test_decide_picks_the_fastest_candidate_that_agrees():
    speedups = {"fp32/contiguous": 1.0, "fp32/channels_last": 1.3, "bf16/contiguous": 1.8, "bf16/channels_last": 2.5}
    deviations = {"fp32/contiguous": 0.0, "fp32/channels_last": 0.001, "bf16/contiguous": 0.01,
                  "bf16/channels_last": 0.5}
    # bf16/channels_last is fastest but its chains end elsewhere: refused
    assert decide(speedups, deviations, "fp32/contiguous") == "bf16/contiguous"
    assert decide(speedups, {**deviations, "bf16/channels_last": 0.04}, "fp32/contiguous") == "bf16/channels_last"


def test_decide_keeps_the_baseline_when_the_gain_is_within_the_margin():
    deviations = {"fp32/contiguous": 0.0, "bf16/contiguous": 0.0}
    assert decide({"fp32/contiguous": 1.0, "bf16/contiguous": 1.04}, deviations, "fp32/contiguous") == "fp32/contiguous"
    assert decide({"fp32/contiguous": 1.0, "bf16/contiguous": 1.06}, deviations, "fp32/contiguous") == "bf16/contiguous"
    assert decide({"fp32/contiguous": 1.0, "bf16/contiguous": 0.7}, deviations, "fp32/contiguous") == "fp32/contiguous"


class FakeClock:
    """A timer that only moves when a fake chain runs: ``cost[name]`` seconds per step."""

    def __init__(self, cost: dict[str, float], offset: dict[str, float]):
        self.now, self.cost, self.offset = 0.0, cost, offset

    def __call__(self) -> float:
        return self.now

    def run(self, x0: torch.Tensor):
        def chain(candidate: Candidate, steps: int) -> torch.Tensor:
            self.now += self.cost[candidate.name] * steps
            # every candidate moves the chains by 1 per step; a candidate's numerics add its offset
            return x0 + steps + self.offset[candidate.name]
        return chain


def test_measure_times_round_robin_and_refuses_a_candidate_whose_chains_disagree():
    x0 = torch.zeros(4, 3)
    clock = FakeClock({"fp32/contiguous": 1.0, "fp32/channels_last": 0.8, "bf16/contiguous": 0.5,
                       "bf16/channels_last": 0.25},
                      {"fp32/contiguous": 0.0, "fp32/channels_last": 0.0, "bf16/contiguous": 0.1,
                       "bf16/channels_last": 3.0})
    state = torch.get_rng_state()
    decision = measure(clock.run(x0), x0, [FP32, FP32_CL, BF16, BF16_CL], chain_steps=20, timer=clock)
    assert torch.equal(torch.get_rng_state(), state)  # the run's random stream is untouched
    # deviations: offset / distance moved (20); bf16/channels_last's 3.0 / 20 = 0.15 is over the tolerance
    assert decision.measured["bf16/contiguous"]["deviation"] == pytest.approx(0.005)
    assert decision.measured["bf16/channels_last"]["agrees"] is False
    assert decision.measured["bf16/contiguous"]["speedup"] == pytest.approx(2.0)
    assert decision.chosen == "bf16/contiguous" and not decision.cached


def test_a_candidate_far_slower_than_fp32_after_one_step_is_not_run_further():
    x0 = torch.zeros(4, 3)
    clock = FakeClock({"fp32/contiguous": 1.0, "bf16/contiguous": 7.0, "fp32/channels_last": 0.5},
                      {"fp32/contiguous": 0.0, "bf16/contiguous": 0.0, "fp32/channels_last": 0.0})
    steps_run = {}
    chain = clock.run(x0)

    def counting(candidate, steps):
        steps_run[candidate.name] = steps_run.get(candidate.name, 0) + steps
        return chain(candidate, steps)

    decision = measure(counting, x0, [FP32, BF16, FP32_CL], chain_steps=20, steps=3, repeats=3, timer=clock)
    assert steps_run["bf16/contiguous"] == 2  # the warm-up and the timed step: 7x slower, screened out
    assert steps_run["fp32/channels_last"] == 2 + 20 + 3 * 3  # screen, agreement chain, three timed rounds
    assert decision.measured["bf16/contiguous"] == {"speedup": pytest.approx(1 / 7, abs=1e-3), "deviation": None,
                                                    "agrees": None, "screened_out": True, "ms_per_step": 7000.0}
    assert decision.chosen == "fp32/channels_last"
    assert "screened out" in decision.describe()


def _tiny_energy() -> ResNetEnergy:
    torch.manual_seed(0)
    return ResNetEnergy(1, width=4, blocks=(1,))


def test_a_decision_is_cached_per_machine_torch_and_network(monkeypatch):
    model, x0 = _tiny_energy(), torch.rand(8, 1, 8, 8) * 2 - 1
    signature = precision.network_signature(model, x0, labelled=False)
    assert signature != precision.network_signature(model, x0[:4], labelled=False)  # batch shape
    assert signature != precision.network_signature(ResNetEnergy(1, width=8, blocks=(1,)), x0, labelled=False)
    assert signature != precision.network_signature(model, x0, labelled=True)
    key = precision.cache_key(x0.device, signature)
    assert torch.__version__ in key and torch.backends.cpu.get_cpu_capability() in key

    measured = Decision("bf16/contiguous", {"bf16/contiguous": {"speedup": 1.5, "deviation": 0.01, "agrees": True}})
    precision.write_cache(key, measured, {"network": "ResNetEnergy", "input": list(x0.shape)})
    assert json.loads(precision.cache_path().read_text())[key]["chosen"] == "bf16/contiguous"

    def never(candidate, steps):
        raise AssertionError("a cached decision is not measured again")

    decision = precision.choose("auto", model, x0, False, never, chain_steps=5)
    assert (decision.chosen, decision.cached) == ("bf16/contiguous", True)

    monkeypatch.setattr(precision, "machine_key", lambda device: {"device": "another CPU", "torch": "9.9"})
    with pytest.raises(AssertionError, match="not measured again"):
        precision.choose("auto", model, x0, False, never, chain_steps=5)


def test_a_host_whose_onednn_is_limited_to_fewer_instructions_is_another_machine(monkeypatch):
    """ONEDNN_MAX_CPU_ISA=AVX512_CORE_BF16 on a host with AMX runs bf16 as a host without AMX would: a decision
    measured without the limit must not be reused under it, and the host kind says which ran."""
    for variable in ISA_LIMIT_VARIABLES:
        monkeypatch.delenv(variable, raising=False)
    cpu = torch.device("cpu")
    unlimited, kind = precision.machine_key(cpu), host_kind()
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "ALL")  # oneDNN's word for no limit
    assert (onednn_isa_limit(), precision.machine_key(cpu), host_kind()) == (None, unlimited, kind)
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "avx512_core_bf16")
    assert onednn_isa_limit() == "AVX512_CORE_BF16"
    assert precision.machine_key(cpu) != unlimited and "oneDNN AVX512_CORE_BF16" in precision.machine_key(cpu)["device"]
    assert host_kind() == kind + "-onednn-avx512_core_bf16"


def test_a_configured_precision_overrides_the_measurement():
    model, x0 = _tiny_energy(), torch.rand(8, 1, 8, 8) * 2 - 1
    cfg = SamplerConfig(steps=3, precision="bf16")
    torch.manual_seed(1)
    chain = run_chain(model, x0, cfg, freeze=model)
    torch.manual_seed(1)
    expected = langevin(model, x0, 3, cfg.step_size, cfg.noise, autocast=torch.bfloat16)
    assert torch.equal(chain.x, expected.x)
    assert precision.precision_summary(model)["chosen"] == "bf16/contiguous"
    assert precision.precision_summary(model)["source"] == "config"
    assert precision.read_cache() == {}  # nothing measured


def test_fp16_is_measured_only_where_the_hardware_has_half_precision_arithmetic(monkeypatch):
    model, x0, cpu = _tiny_energy(), torch.rand(8, 1, 8, 8), torch.device("cpu")
    monkeypatch.setattr(torch.cpu, "_is_amx_fp16_supported", lambda: False)
    monkeypatch.setattr(precision, "cpu_flags", lambda: {"avx512f", "avx512_bf16"})
    assert {c.precision for c in precision.candidates(cpu, model, x0)} == {"fp32", "bf16"}
    monkeypatch.setattr(precision, "cpu_flags", lambda: {"avx512f", "avx512_fp16"})
    assert [c.name for c in precision.candidates(cpu, model, x0, switch_layout=False)] == [
        "fp32/contiguous", "bf16/contiguous", "fp16/contiguous"]
    assert Candidate.from_name("fp16/channels_last").dtype == torch.float16


def test_a_configured_fp16_sampler_runs_its_passes_in_half_precision_and_stays_near_fp32():
    model, x0 = _tiny_energy(), torch.rand(8, 1, 8, 8) * 2 - 1
    torch.manual_seed(1)
    chain = run_chain(model, x0, SamplerConfig(steps=3, precision="fp16"), freeze=model)
    torch.manual_seed(1)
    half = langevin(model, x0, 3, 10.0, 0.005, autocast=torch.float16)
    torch.manual_seed(1)
    full = langevin(model, x0, 3, 10.0, 0.005)
    assert torch.equal(chain.x, half.x) and chain.x.dtype == torch.float32
    moved = (full.x - x0).abs().mean()
    assert 0 < (half.x - full.x).abs().mean() < precision.TOLERANCE * moved  # rounded, within the stated tolerance


def test_auto_runs_the_chosen_candidate_and_a_switched_layout_gives_the_same_chain():
    model, x0 = _tiny_energy(), torch.rand(8, 1, 8, 8) * 2 - 1
    key = precision.cache_key(x0.device, precision.network_signature(model, x0, labelled=False))
    precision.write_cache(key, Decision("fp32/channels_last"), {"network": "ResNetEnergy", "input": [8, 1, 8, 8]})
    torch.manual_seed(2)
    chain = run_chain(model, x0, SamplerConfig(steps=3), freeze=model)
    torch.manual_seed(2)
    expected = langevin(model, x0, 3, 10.0, 0.005)
    torch.testing.assert_close(chain.x, expected.x, atol=1e-5, rtol=0)
    assert chain.x.is_contiguous() and not precision.is_channels_last(model)  # layouts restored


def test_speed_show_lists_the_cached_decisions(capsys):
    x0 = torch.zeros(8, 1, 8, 8)
    key = precision.cache_key(x0.device, precision.network_signature(_tiny_energy(), x0, labelled=False))
    precision.write_cache(key, Decision("fp32/contiguous"), {"network": "ResNetEnergy", "input": [8, 1, 8, 8]})
    assert main(["speed", "show"]) == 0
    out = capsys.readouterr().out
    assert "1 sampler decision(s)" in out and "fp32/contiguous" in out and "ResNetEnergy" in out
    assert main(["speed", "measure", "classifier-mnist"]) == 2
    assert "knows the ebm experiments" in capsys.readouterr().err


def test_measuring_leaves_the_network_as_a_cached_decision_would():
    """The measurement's chains run spectral norm's power iteration (and would move batch-norm statistics);
    a run that measures must continue exactly as one that reads the decision from the cache."""
    torch.manual_seed(0)
    model = ResNetEnergy(1, width=4, blocks=(1,), spectral_norm=True)
    x0 = torch.rand(8, 1, 8, 8) * 2 - 1
    before = {name: b.clone() for name, b in model.named_buffers()}
    assert before, "a spectral-norm network has power-iteration buffers"
    torch.manual_seed(5)
    measured = run_chain(model, x0, SamplerConfig(steps=3), freeze=model)
    assert not precision.precision_summary(model)["cached"]
    after_measuring = {name: b.clone() for name, b in model.named_buffers()}
    for name, b in before.items():  # only the chain's own forward passes moved them
        model.get_buffer(name).copy_(b)
    torch.manual_seed(5)
    cached = run_chain(model, x0, SamplerConfig(steps=3), freeze=model)
    assert precision.read_cache() and torch.equal(measured.x, cached.x)
    assert all(torch.equal(after_measuring[name], b) for name, b in model.named_buffers())
