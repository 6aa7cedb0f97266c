"""dataset-builder: catalogs in, grounded question/answer datasets out."""
