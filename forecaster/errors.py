"""The one exception type that ends a command with a one-line message and exit code 2."""


class UserError(Exception):
    """Bad input from the user (a file, a setting, a flag): printed as one line, exit code 2.

    The message must name the thing at fault, e.g. "prices.csv: no close column".
    """
