"""Spark MLlib's LogisticRegression on a Parquet file hessforge wrote: the
outside anchor of "Data at scale" (docs/src/results/data.md).

    python spark_anchor.py ROWS.parquet LAMBDA FEATURES

Fits y ~ x_1..x_FEATURES with an intercept and the L2 penalty
(LAMBDA/2)·‖w‖² on the unstandardised features — hessforge's
`logistic_regression` objective, (1/N) Σ log-loss + (λ/2)‖w‖², bias not
penalised — on `local[2]` (two cores), Spark's defaults otherwise (L-BFGS,
tol 1e-6, at most 100 iterations). Prints one JSON document: the fit's
seconds (reading the file included: Spark reads it inside fit), its
iterations, its last objective value and the coefficients in hessforge's
parameter order (w_1..w_F, b).
"""
import json
import sys
import time

from pyspark.ml.classification import LogisticRegression
from pyspark.ml.feature import VectorAssembler
from pyspark.sql import SparkSession


def main():
    path, lam, features = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
    spark = (
        SparkSession.builder.master("local[2]")
        .appName("hessforge-anchor")
        .config("spark.driver.memory", "8g")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    names = [f"x_{j}" for j in range(1, features + 1)]
    rows = spark.read.parquet(path)
    data = VectorAssembler(inputCols=names, outputCol="features").transform(rows)
    model = LogisticRegression(
        featuresCol="features",
        labelCol="y",
        regParam=lam,
        elasticNetParam=0.0,
        standardization=False,
        fitIntercept=True,
    )
    start = time.perf_counter()
    fitted = model.fit(data)
    seconds = time.perf_counter() - start
    summary = fitted.summary
    print(json.dumps({
        "tool": "spark-mllib",
        "version": spark.version,
        "seconds": seconds,
        "iterations": summary.totalIterations,
        "objective": summary.objectiveHistory[-1],
        "theta": list(fitted.coefficients.toArray()) + [fitted.intercept],
    }))
    spark.stop()


if __name__ == "__main__":
    main()
