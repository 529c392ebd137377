"""Speed and scale measurements, run by ``make bench``; not part of the tests."""
