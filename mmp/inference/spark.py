"""`mmp batch-inference --engine spark`: the logged pyfunc over a Spark DataFrame (`mlflow.pyfunc.spark_udf`).

Spark reads the input (parquet, csv, json, a JDBC table), every partition is predicted by the very
pyfunc the local engine uses, and the output (entity columns + prediction columns, named and ordered
as the local engine writes them) is written to a temporary folder beside the destination, then
renamed into place, so a failed job leaves nothing at the destination. pyspark is imported here only.
"""

from __future__ import annotations

import os
import sys
import time
import uuid
import warnings
from typing import Any

from mmp.errors import UserError
from mmp.inference.batch import BatchResult
from mmp.models.logged import LoggedModel

READ_FORMATS = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv", ".json": "json", ".jsonl": "json",
                ".ndjson": "json"}
SQLALCHEMY_SCHEMES = ("postgresql", "postgres:", "duckdb:", "sqlite:", "mysql", "snowflake:", "bigquery:")
JDBC_HINT = "write jdbc:<driver>://<host>/<database>#<table>, e.g. jdbc:postgresql://db:5432/shop#public.orders"


def spark_session(spec: Any) -> Any:
    """The active SparkSession, else one built from the env's `batch.spark` (master, app name, conf)."""
    from pyspark.sql import SparkSession

    # pyspark 4.x warns on every pandas UDF under pandas 3; mmp checks its own output, so say it once.
    warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas", category=FutureWarning)
    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    builder = SparkSession.builder.appName(spec.app_name)
    # Under spark-submit (which starts the JVM and hands Python its gateway) --master has the last word.
    if "PYSPARK_GATEWAY_PORT" not in os.environ:
        builder = builder.master(spec.master)
        if spec.master.startswith("local"):  # local workers run this interpreter (its venv), not `python3`
            os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = builder.config("spark.ui.showConsoleProgress", "false")  # a bar redrawn in logs; conf may say true
    for key, value in spec.conf.items():
        builder = builder.config(key, str(value).lower() if isinstance(value, bool) else str(value))
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel(str(spec.conf.get("spark.log.level", "ERROR")))
    return spark


def absolute(uri: str) -> str:
    """A plain local path made absolute: a reused session's JVM may run in another folder than mmp."""
    return uri if "://" in uri or uri.startswith(("jdbc:", "file:")) else os.path.abspath(uri)


def split_jdbc(uri: str, flag: str) -> tuple[str, str]:
    """`jdbc:...#table` -> (JDBC URL, table); a URL without a table is a UserError."""
    url, _, table = uri.partition("#")
    if not table:
        raise UserError(f"{flag} {uri}: no table named; {JDBC_HINT}")
    return url, table


def read_input(spark: Any, model: LoggedModel, source: str, spec: Any) -> Any:
    """`source` as a Spark DataFrame: the model's numeric features as doubles, its text features as strings."""
    from pyspark.sql import types as T

    if source.startswith("jdbc:"):
        url, table = split_jdbc(source, "-d")
        frame = spark.read.jdbc(url, table, properties={k: str(v) for k, v in spec.jdbc_properties.items()})
    else:
        suffix = os.path.splitext(source.rstrip("/").split("?", 1)[0])[1].lower()
        fmt = READ_FORMATS.get(suffix, "parquet")  # a folder of part files: Spark's own default
        reader = spark.read.option("header", True).option("inferSchema", True) if fmt == "csv" else spark.read
        path = absolute(source)
        frame = reader.format(fmt).load(path)
        if fmt == "csv":  # read again with the model's types, so text features keep their exact text
            fields = [T.StructField(f.name, _csv_type(model, f), True) for f in frame.schema]
            # FAILFAST: a value that is no number in a numeric column fails the job, as the local engine exits 2.
            frame = spark.read.option("header", True).option("mode", "FAILFAST").schema(T.StructType(fields)).csv(path)
    check_spark_columns(model, frame.schema, source)
    casts = [frame[c].cast(_feature_type(model, c)).alias(c) if _feature_type(model, c) else frame[c]
             for c in frame.columns]
    return frame.select(*casts)


def _feature_type(model: LoggedModel, column: str) -> Any:
    from pyspark.sql import types as T

    if column not in model.features or not model.numeric:
        return None
    return T.DoubleType() if column in set(model.numeric) else T.StringType()


def _csv_type(model: LoggedModel, field: Any) -> Any:
    """A csv column's type: the model's for features; whole numbers as 64-bit, as the local engine reads them."""
    from pyspark.sql import types as T

    if isinstance(field.dataType, T.IntegralType) and not _feature_type(model, field.name):
        return T.LongType()
    return _feature_type(model, field.name) or field.dataType


def check_spark_columns(model: LoggedModel, schema: Any, source: str) -> None:
    """Missing feature columns and numeric features held as text or dates: a UserError naming them."""
    from pyspark.sql import types as T

    available = [f.name for f in schema]
    missing = [c for c in model.features if c not in available]
    problems = []
    if missing:
        problems.append(f"missing column{'s' if len(missing) > 1 else ''}: {', '.join(missing)} "
                        f"(available: {', '.join(available)})")
    for field in schema:
        if field.name in model.numeric and not isinstance(field.dataType, (T.NumericType, T.BooleanType, T.NullType)):
            problems.append(f"column '{field.name}' holds {field.dataType.simpleString()}, the model expects a number")
    if problems:
        raise UserError(f"-d {source}: the data does not fit the model:\n  - " + "\n  - ".join(problems))


def result_schema(model: LoggedModel) -> Any:
    """The prediction columns' Spark types, from the logged signature's outputs (else one double)."""
    from pyspark.sql import types as T

    outputs = model.pyfunc.metadata.get_output_schema()
    if outputs is None or not outputs.has_input_names():
        return T.StructType([T.StructField("prediction", T.DoubleType())])
    # pandas hands back nullable columns; a non-nullable field would fail Spark's Arrow check.
    return T.StructType([T.StructField(f.name, f.dataType, True) for f in outputs.as_spark_schema()])


def predict_frame(spark: Any, model: LoggedModel, frame: Any) -> Any:
    """Entity columns, then the prediction columns, for every row of `frame` (lazily)."""
    import mlflow
    from pyspark.sql import functions as F

    schema = result_schema(model)
    udf = mlflow.pyfunc.spark_udf(spark, model.uri, result_type=schema, env_manager="local")
    features = list(dict.fromkeys(model.features)) or [c for c in frame.columns if c not in model.entity_columns]
    predicted = frame.withColumn("__mmp_prediction", udf(F.struct(*[frame[c] for c in features])))
    entities = [c for c in model.entity_columns if c in frame.columns]
    return predicted.select(*entities, *[F.col("__mmp_prediction")[f.name].alias(f.name) for f in schema])


def write_atomically(spark: Any, frame: Any, uri: str, fmt: str) -> None:
    """Write `frame` as a folder of part files into a temporary sibling of `uri`, then rename it into place."""
    jvm = spark.sparkContext._jvm
    target = jvm.org.apache.hadoop.fs.Path(absolute(uri))
    fs = target.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())
    temp = jvm.org.apache.hadoop.fs.Path(target.getParent(), f".{target.getName()}.{uuid.uuid4().hex[:12]}.tmp")
    try:
        writer = frame.write.mode("overwrite")
        if fmt == "csv":
            writer = writer.option("header", True)
        writer.format(fmt).save(temp.toString())
        if fs.exists(target):
            fs.delete(target, True)
        if not fs.rename(temp, target):
            raise OSError(f"could not rename {temp.toString()} to {uri}")
    finally:
        if fs.exists(temp):
            fs.delete(temp, True)


def run_spark_batch(model: LoggedModel, source: str, target: str, default_format: str, spec: Any,
                    quiet: bool = False) -> BatchResult:
    """Predict `source` into `target` (a folder of part files, or a JDBC table) on a Spark session."""
    from mmp.io.writers import destination
    from mmp.masking import scrub

    if model.task == "timeseries":
        raise UserError("batch.engine=spark: a forecaster (task: timeseries) reads each series whole, not row by "
                        "row; use the local engine (--engine local or batch.engine=local)")
    for flag, uri in (("-d", source), ("-o", target)):
        if uri.startswith(SQLALCHEMY_SCHEMES) or (flag == "-d" and uri.lower().endswith(".sql")):
            raise UserError(f"{flag} {uri}: batch.engine=spark reads and writes SQL tables through JDBC; {JDBC_HINT}")
    if target.startswith("jdbc:"):
        output_uri, output_format = target, "jdbc"
        url, table = split_jdbc(target, "-o")
    else:
        output_uri, output_format = destination(target, default_format, model.run_id)
    if quiet:  # spark_udf downloads the model with a progress bar per folder
        os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    started = time.perf_counter()
    spark = spark_session(spec)
    try:
        frame = predict_frame(spark, model, read_input(spark, model, source, spec))
        rows = frame.count()  # Spark prunes the unused predictions: this only reads (parquet: its footers)
        if rows == 0:
            raise UserError(f"-d {source}: the data has no rows")
        if output_format == "jdbc":  # a table is replaced in place: JDBC has no atomic rename across tables
            frame.write.jdbc(url, table, mode="overwrite",
                             properties={k: str(v) for k, v in spec.jdbc_properties.items()})
        else:
            write_atomically(spark, frame, output_uri, output_format)
    except Exception as exc:
        readable = _readable(exc, source)
        if readable is exc:
            raise
        raise readable from exc
    result = BatchResult(rows, time.perf_counter() - started, output_uri)
    if not quiet:
        print(f"✓ {rows:,} rows in {result.seconds:.2f} s ({result.rows_per_second:,.0f} rows/s) on Spark "
              f"{spark.sparkContext.master} -> {scrub(output_uri)}", file=sys.stderr)
    return result


def _readable(exc: Exception, source: str) -> Exception:
    """A Spark error as one line (not the JVM's stack trace); a missing input is a UserError (exit 2)."""
    if isinstance(exc, UserError) or not type(exc).__module__.startswith(("pyspark", "py4j")):
        return exc
    condition = getattr(exc, "getCondition", lambda: None)() or ""
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip() and not line.strip().startswith("at ")]
    first = next((line for line in lines if "Exception" in line or "[" in line), lines[0] if lines else type(exc).__name__)
    if condition == "PATH_NOT_FOUND":
        return UserError(f"-d {source}: no such file or folder ({first})")
    if "MALFORMED_RECORD" in str(exc) or "CAST_INVALID_INPUT" in str(exc):
        causes = [line.split(": ", 2)[-1] for line in lines if line.startswith("Caused by:")]
        return UserError(f"-d {source}: cannot read the data: a numeric column holds a value that is not a number "
                         f"({(causes or [first])[-1][:300]})")
    unfit = [line for line in lines if "InputError: " in line]  # the model's own check, in a Python worker
    if unfit:
        return UserError(f"-d {source}: the data does not fit the model: {unfit[-1].split('InputError: ', 1)[1]}")
    return RuntimeError(f"Spark job failed: {first[:2000]}")
