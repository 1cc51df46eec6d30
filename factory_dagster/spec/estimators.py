"""The allow-list of scikit-learn estimators a model spec may name, with the parameters it may set.

Specs never import code: an estimator is a name from this table and its parameters are validated
against a typed schema here, at load time, without importing scikit-learn (which costs ~1.5 s).
`tests/test_estimators.py` checks every entry against the real scikit-learn signatures.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, PositiveFloat, PositiveInt

Task = Literal["classification", "regression"]
UnitFloat = Annotated[float, Field(gt=0, le=1)]
NonNegativeFloat = Annotated[float, Field(ge=0)]
ClassWeight = Literal["balanced"] | None
MaxFeatures = Literal["sqrt", "log2"] | UnitFloat | None


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LogisticRegressionParams(_Params):
    C: PositiveFloat = 1.0
    max_iter: PositiveInt = 100
    class_weight: ClassWeight = None
    solver: Literal["lbfgs", "liblinear", "newton-cg", "newton-cholesky", "sag", "saga"] = "lbfgs"
    tol: PositiveFloat = 1e-4


class ForestParams(_Params):
    n_estimators: PositiveInt = 100
    max_depth: PositiveInt | None = None
    min_samples_split: Annotated[int, Field(ge=2)] = 2
    min_samples_leaf: PositiveInt = 1
    max_features: MaxFeatures = "sqrt"
    n_jobs: PositiveInt | None = None


class ForestClassifierParams(ForestParams):
    class_weight: Literal["balanced", "balanced_subsample"] | None = None
    criterion: Literal["gini", "entropy", "log_loss"] = "gini"


class ForestRegressorParams(ForestParams):
    max_features: MaxFeatures = 1.0
    criterion: Literal["squared_error", "absolute_error", "friedman_mse", "poisson"] = "squared_error"


class HistGradientBoostingParams(_Params):
    learning_rate: PositiveFloat = 0.1
    max_iter: PositiveInt = 100
    max_leaf_nodes: Annotated[int, Field(ge=2)] | None = 31
    max_depth: PositiveInt | None = None
    min_samples_leaf: PositiveInt = 20
    l2_regularization: NonNegativeFloat = 0.0
    max_bins: Annotated[int, Field(ge=2, le=255)] = 255
    early_stopping: Literal["auto"] | bool = "auto"


class HistGradientBoostingClassifierParams(HistGradientBoostingParams):
    class_weight: ClassWeight = None


class GradientBoostingParams(_Params):
    n_estimators: PositiveInt = 100
    learning_rate: PositiveFloat = 0.1
    max_depth: PositiveInt | None = 3
    subsample: UnitFloat = 1.0
    min_samples_leaf: PositiveInt = 1


class DecisionTreeClassifierParams(_Params):
    max_depth: PositiveInt | None = None
    min_samples_leaf: PositiveInt = 1
    criterion: Literal["gini", "entropy", "log_loss"] = "gini"
    class_weight: ClassWeight = None


class DecisionTreeRegressorParams(_Params):
    max_depth: PositiveInt | None = None
    min_samples_leaf: PositiveInt = 1


class RidgeParams(_Params):
    alpha: NonNegativeFloat = 1.0
    fit_intercept: bool = True


class LinearRegressionParams(_Params):
    fit_intercept: bool = True


@dataclass(frozen=True)
class EstimatorInfo:
    """How the factory builds and feeds one allowed estimator."""

    module: str
    task: Task
    params: type[_Params]
    seeded: bool  # accepts random_state
    encoding: Literal["onehot", "ordinal"]  # how categorical features are encoded
    scale: bool  # standardize numeric features (linear models)


ESTIMATORS: dict[str, EstimatorInfo] = {
    "LogisticRegression": EstimatorInfo(
        "sklearn.linear_model", "classification", LogisticRegressionParams, True, "onehot", True
    ),
    "RandomForestClassifier": EstimatorInfo(
        "sklearn.ensemble", "classification", ForestClassifierParams, True, "ordinal", False
    ),
    "ExtraTreesClassifier": EstimatorInfo(
        "sklearn.ensemble", "classification", ForestClassifierParams, True, "ordinal", False
    ),
    "HistGradientBoostingClassifier": EstimatorInfo(
        "sklearn.ensemble",
        "classification",
        HistGradientBoostingClassifierParams,
        True,
        "ordinal",
        False,
    ),
    "GradientBoostingClassifier": EstimatorInfo(
        "sklearn.ensemble", "classification", GradientBoostingParams, True, "ordinal", False
    ),
    "DecisionTreeClassifier": EstimatorInfo(
        "sklearn.tree", "classification", DecisionTreeClassifierParams, True, "ordinal", False
    ),
    "Ridge": EstimatorInfo("sklearn.linear_model", "regression", RidgeParams, True, "onehot", True),
    "LinearRegression": EstimatorInfo(
        "sklearn.linear_model", "regression", LinearRegressionParams, False, "onehot", True
    ),
    "RandomForestRegressor": EstimatorInfo(
        "sklearn.ensemble", "regression", ForestRegressorParams, True, "ordinal", False
    ),
    "HistGradientBoostingRegressor": EstimatorInfo(
        "sklearn.ensemble", "regression", HistGradientBoostingParams, True, "ordinal", False
    ),
    "GradientBoostingRegressor": EstimatorInfo(
        "sklearn.ensemble", "regression", GradientBoostingParams, True, "ordinal", False
    ),
    "DecisionTreeRegressor": EstimatorInfo(
        "sklearn.tree", "regression", DecisionTreeRegressorParams, True, "ordinal", False
    ),
}
