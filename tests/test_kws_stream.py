"""Per-keyword stream thresholds: `calibrate` chooses each keyword's threshold from its own false
accepts on non-keyword audio, `detect` honours them, a hand-given --threshold replaces them, and
the generated negatives share no word with what the model was taught to reject or with the
real-voice recordings that report the calibration."""

from __future__ import annotations

import numpy as np
import pytest

from edgetune.errors import RunDirError
from edgetune.tasks.kws_stream import CEILING, StreamConfig, calibrate, detect

LABELS = ["yes", "no", "_unknown_", "_silence_"]
HOP = 0.1


def _posteriors(peaks: dict[int, tuple[str, float]], n: int = 600) -> tuple[np.ndarray, np.ndarray]:
    """n windows of `_unknown_` at 0.9, except window i → (label, probability) for i in peaks."""
    times = 1.0 + HOP * np.arange(n)  # window end times; 1 s windows
    sm = np.zeros((n, len(LABELS)))
    sm[:, 2] = 0.9
    sm[:, 3] = 0.1
    for i, (label, p) in peaks.items():
        sm[i] = 0.0
        sm[i, LABELS.index(label)] = p
        sm[i, 2] = 1 - p
    return times, sm


def test_each_keyword_gets_the_lowest_threshold_its_negatives_allow():
    # "yes" reaches 0.734 on the negatives, "no" only 0.3: yes goes just above its peak, no keeps
    # the card's 0.5 (calibration never lowers a threshold).
    times, sm = _posteriors({100: ("yes", 0.734), 300: ("no", 0.3), 450: ("yes", 0.6)})
    cal = calibrate([(times, sm, [])], LABELS, StreamConfig(), window_s=1.0)
    assert cal.thresholds == {"yes": 0.74, "no": 0.5}
    assert cal.false_accepts == {"yes": 0, "no": 0} and cal.allowed == 0 and cal.over_budget == []
    assert cal.negative_s == pytest.approx(60.0)
    # at those thresholds the same audio fires nothing; at the card's one threshold it fired twice
    assert detect(times, sm, LABELS, StreamConfig(thresholds=cal.thresholds), 1.0) == []
    assert [d["label"] for d in detect(times, sm, LABELS, StreamConfig(), 1.0)] == ["yes", "yes"]


def test_keyword_events_in_a_calibration_recording_are_not_false_accepts():
    times, sm = _posteriors({200: ("yes", 0.99), 400: ("yes", 0.55)})
    centre = times[200] - 0.5
    cal = calibrate([(times, sm, [{"label": "yes", "start_s": centre - 0.2, "end_s": centre + 0.2}])],
                    LABELS, StreamConfig(), window_s=1.0)
    assert cal.thresholds["yes"] == 0.56  # set by the stray 0.55, not by the real "yes" at 0.99
    assert cal.negative_s < 60.0  # the event's windows (± 0.75 s) are not negative audio


def test_a_keyword_that_fires_even_at_the_ceiling_is_reported_over_budget():
    times, sm = _posteriors({100: ("no", 0.97), 300: ("no", 0.98)})
    cal = calibrate([(times, sm, [])], LABELS, StreamConfig(), window_s=1.0)
    assert cal.thresholds["no"] == CEILING and cal.false_accepts["no"] == 2 and cal.over_budget == ["no"]
    assert cal.to_dict()["over_budget"] == ["no"]


def test_a_long_recording_allows_its_share_of_the_budget():
    # 10 h of negatives: 2 FA/h over 2 keywords allows each 10 false accepts; "yes" fires at 0.8 on
    # 10 windows far apart and at 0.7 on 5 more, so 0.5 would give 15, and 0.71 gives 10.
    n = int(10 * 3600 / HOP)
    peaks = {1000 + 5000 * k: ("yes", 0.8) for k in range(10)} | {3500 + 5000 * k: ("yes", 0.7) for k in range(5)}
    times, sm = _posteriors(peaks, n=n)
    cal = calibrate([(times, sm, [])], LABELS, StreamConfig(), window_s=1.0)
    assert cal.allowed == 10 and cal.thresholds["yes"] == 0.71 and cal.false_accepts["yes"] == 10


def test_per_keyword_thresholds_fire_only_their_keyword():
    times, sm = _posteriors({100: ("yes", 0.7), 300: ("no", 0.6)})
    dets = detect(times, sm, LABELS, StreamConfig(thresholds={"yes": 0.8}), 1.0)
    assert [(d["label"], d["score"]) for d in dets] == [("no", 0.6)]


def test_a_hand_given_threshold_replaces_the_calibrated_ones():
    recorded = StreamConfig(thresholds={"yes": 0.8}).to_dict()
    assert StreamConfig.from_dict(recorded).thresholds == {"yes": 0.8}
    cfg = StreamConfig.from_dict(recorded, threshold=0.6)
    assert cfg.thresholds == {} and cfg.threshold_of("yes") == 0.6


@pytest.mark.parametrize("thresholds", [{"yes": 1.5}, {"yes": "high"}, ["yes", 0.7]])
def test_bad_recorded_thresholds_are_one_line(thresholds):
    with pytest.raises(RunDirError) as e:
        StreamConfig(thresholds=thresholds).check()
    assert e.value.message == ("export.json: field 'postprocess.thresholds' must map keywords to numbers in (0, 1), "
                               f"got {thresholds!r}")
    assert e.value.hint == "re-run `edgetune export`, or pass --threshold T"


def test_negative_phrases_share_no_word_with_unknowns_keywords_or_the_real_voices():
    from edgetune.data.kws_synth import DEFAULT_WORDS, PHRASE_WORDS, UNKNOWN_WORDS
    from edgetune.data.real_speech import CLIPS

    real_words = {w for c in CLIPS for w in c.text.lower().split()}
    assert set(PHRASE_WORDS).isdisjoint(UNKNOWN_WORDS)
    assert set(PHRASE_WORDS).isdisjoint(DEFAULT_WORDS)
    assert set(PHRASE_WORDS).isdisjoint(real_words)


def test_export_output_names_the_thresholds_and_the_keywords_over_budget(capsys):
    from edgetune.cli.export import _stream_thresholds

    _stream_thresholds({"thresholds": {"yes": 0.95, "no": 0.5}, "fa_budget_per_hour": 2.0, "negative_s": 119.6,
                        "recordings": ["negatives/speech.wav"], "over_budget": ["yes"],
                        "false_accepts": {"yes": 3, "no": 0}})
    assert capsys.readouterr().out.splitlines() == [
        "  stream thresholds (≤ 2 false accepts/hour on 120 s of negatives/speech.wav): yes 0.95, no 0.50",
        "  warning: yes (3 at 0.95) still fire(s) on the negatives at the highest threshold allowed: expect false "
        "accepts from them"]
