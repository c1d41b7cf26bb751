"""The `python -m bench` harness: its table goes between the markers of docs/benchmarks.md, once."""

import pytest

bench = pytest.importorskip("bench.__main__")


def test_write_docs_replaces_only_the_marked_block(tmp_path):
    doc = tmp_path / "benchmarks.md"
    doc.write_text("# Benchmarks\n\nintro\n")
    bench.write_docs("table one", doc)
    bench.write_docs("table two", doc)
    text = doc.read_text()
    assert text.count("<!-- bench:start -->") == 1 and "table two" in text and "table one" not in text
    assert text.startswith("# Benchmarks\n\nintro\n")


def test_verdict_states_how_far_short_and_why():
    assert bench.verdict(2.5, 2.0) == "met"
    short = bench.verdict(2.5, 5.0, "update")
    assert short.startswith("short: 50% of target (arithmetic-bound")


def test_unknown_section_is_rejected_before_any_measurement(capsys):
    with pytest.raises(SystemExit) as exc:
        bench.main(["--only", "update,speed", "--no_write"])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and "unknown section(s) speed; allowed: simulator, collection" in err


def test_gpu_section_says_when_no_gpu_was_measured(monkeypatch, capsys):
    monkeypatch.setattr(bench.torch.cuda, "is_available", lambda: False)
    assert bench.main(["--only", "gpu", "--no_write"]) == 0
    assert "not measured: no GPU on this machine" in capsys.readouterr().out
