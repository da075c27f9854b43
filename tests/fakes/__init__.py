"""Local fakes of third-party APIs the tests cannot reach."""
