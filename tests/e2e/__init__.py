"""End to end: the product as shipped (wheel, container) and real processes killed again and again."""
