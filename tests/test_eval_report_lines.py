"""The study sections' lines on the new metrics: label-free twin, memorisation, CAS and the papers' numbers."""

from genlab.report.studies import _cas_lines, _memorisation_lines, _paper_lines, _twin_lines


def _runs(**stages):
    return {name: [{"metrics": metrics}] for name, metrics in stages.items()}


def test_twin_line_says_whether_the_two_fids_rank_the_runs_alike():
    alike = _runs(a={"fid": 1.0, "randnet_fid": 10.0}, b={"fid": 2.0, "randnet_fid": 20.0})
    assert "rank the runs alike" in _twin_lines(alike, "fid", "randnet_fid")[0]
    crossed = _runs(a={"fid": 1.0, "randnet_fid": 30.0}, b={"fid": 2.0, "randnet_fid": 20.0})
    line = _twin_lines(crossed, "fid", "randnet_fid")[0]
    assert "disagree" in line and "judge a < b" in line and "label-free b < a" in line
    assert _twin_lines(_runs(a={"fid": 1.0, "randnet_fid": 3.0}), "fid", "randnet_fid") == []
    # runs on different datasets are not ranked against each other
    apart = _runs(**{"x-mnist": {"fid": 1.0, "randnet_fid": 30.0}, "x-cifar10": {"fid": 2.0, "randnet_fid": 20.0}})
    assert _twin_lines(apart, "fid", "randnet_fid") == []


def test_memorisation_line_flags_shares_above_five_percent():
    line = _memorisation_lines(_runs(new={"memorised_share": 0.01}, copier={"memorised_share": 0.4}),
                               "memorised_share")[0]
    assert "new 0.010" in line and "look at figures/memorisation.png: copier." in line


def test_cas_and_paper_lines():
    assert "x 0.8 (real images 0.95)" in _cas_lines(_runs(x={"cas": 0.8, "cas_real": 0.95}, y={}))[0]
    line = _paper_lines(("JEM", "JEM++"), {"JEM": 0.5})[0]
    assert "accuracy 92.9%" in line and "Inception FID 38.4" in line and "accuracy 94.1%" in line
    assert "IGEBM" not in line and "genlab's CIFAR-10 test accuracy: JEM 50.0%" in line
