"""Prices: where they come from (sources), the CSV layouts, the checks a fetch must pass, and storing them."""
