"""The estimator allow-list matches real scikit-learn: every class exists, every parameter too."""

from __future__ import annotations

import importlib
import inspect

import pytest

from factory_dagster.spec.estimators import ESTIMATORS


@pytest.mark.parametrize("name", sorted(ESTIMATORS))
def test_allowed_parameters_exist_in_sklearn(name: str) -> None:
    info = ESTIMATORS[name]
    cls = getattr(importlib.import_module(info.module), name)
    signature = inspect.signature(cls.__init__).parameters
    for param in info.params.model_fields:
        assert param in signature, f"{name} has no parameter {param}"
    assert ("random_state" in signature) == info.seeded
    task = (
        "classification"
        if (hasattr(cls, "predict_proba") and "Classifier" in name) or name == "LogisticRegression"
        else "regression"
    )
    assert info.task == task


@pytest.mark.parametrize("name", sorted(ESTIMATORS))
def test_defaults_construct_the_estimator(name: str) -> None:
    info = ESTIMATORS[name]
    cls = getattr(importlib.import_module(info.module), name)
    estimator = cls(**info.params().model_dump())
    estimator._validate_params()  # scikit-learn's own parameter constraints
