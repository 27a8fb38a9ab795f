"""Cloud engines: adapters for vendors' video APIs, run on the io lane without blocking."""
