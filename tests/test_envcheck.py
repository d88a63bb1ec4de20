from tools.envcheck import check_package, run_checks
from tools.pins import read_pins


def test_every_pin_is_installed_and_reported_ok(capsys):
    assert run_checks(read_pins(), capabilities=True)
    out = capsys.readouterr().out
    assert "[OK] transformers 5.17.0" in out and "[OK] torch is a CPU build" in out
    assert "[FAIL]" not in out and out.rstrip().endswith("All checks passed.")


def test_missing_and_wrong_versions_fail_with_advice(capsys):
    assert not run_checks({"no-such-package-xyz": "1.0", "pytest": "0.0.1"}, capabilities=False)
    out = capsys.readouterr().out
    assert (
        "[FAIL] no-such-package-xyz is missing (wanted 1.0): pip install no-such-package-xyz==1.0"
        in out
    )
    assert "the kit pins 0.0.1" in out and "Some checks failed" in out
    assert check_package("pytest", read_pins()["pytest"])[0]
