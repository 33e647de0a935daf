"""The report the checks write to, and the exception that ends the run on a check that cannot go on."""


class Failure(Exception):
    """A check failed; the message says which."""


class Report:
    """One `ok` line per group of checks that all passed, a `FAIL` line per failed check, `skip` lines."""

    def __init__(self):
        self.failures = []
        self.passed = 0
        self.skipped = []
        self.mark = 0

    def check(self, condition, message):
        if not condition:
            self.failures.append(message)
            print(f"FAIL {message}", flush=True)
        return condition

    def ok(self, message):
        """Prints MESSAGE when no check failed since the previous ok()."""
        if len(self.failures) == self.mark:
            self.passed += 1
            print(f"ok   {message}", flush=True)
        self.mark = len(self.failures)

    def skip(self, message):
        self.skipped.append(message)
        print(f"skip {message}", flush=True)
