"""The product: captures, their faces, reviews and model versions; pages, API and admin."""
