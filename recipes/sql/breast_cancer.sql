-- Breast cancer rows read from the CSV by the embedded DuckDB: no database server needed.
-- min_id is a template parameter: data.params.min_id in the recipe, or -p '{"min_id": 100}'.
SELECT *
FROM read_csv_auto('data/breast_cancer.csv')
WHERE id > {{ min_id }}
