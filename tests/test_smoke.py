from labkit import Config, simulate


def test_default_run_settles_all_100(records):
    report = simulate(records, Config())
    assert len(report.succeeded) == 100
