"""Figures drawn from metrics records: which panels appear, and what they plot."""

from genlab.report.figures import sampling_figure


def evaluation(step, per_class=None):
    record = {"split": "eval", "step": step, "wall_s": 6.0 * step, "fid": 100.0 / step,
              "chain_energy_trace": [1.0, 0.5, 0.2]}
    return record | ({"per_class_accuracy": per_class} if per_class else {})


def test_sampling_figure_adds_per_class_accuracy_over_training_for_a_conditional_model():
    assert sampling_figure([{"split": "train", "step": 1, "loss": 1.0}]) is None
    assert len(sampling_figure([evaluation(10), evaluation(20)]).axes) == 2
    records = [evaluation(10, [0.5] * 10), evaluation(20, [0.9] * 9 + [0.1])]
    panel = sampling_figure(records).axes[2]
    lines = panel.get_lines()
    assert len(lines) == 10
    assert list(lines[9].get_xdata()) == [10, 20] and list(lines[9].get_ydata()) == [0.5, 0.1]
