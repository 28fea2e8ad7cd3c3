"""Seeded data generators (issue 2, item 6)."""

import numpy as np
import pytest

from workbench import data as D


@pytest.mark.parametrize("name", D.PLAYGROUND)
def test_playground_sets_are_2d_binary_and_seeded(name):
    a, b = D.playground(name, n=100, seed=3), D.playground(name, n=100, seed=3)
    assert a.x_train.shape == (50, 2) and a.n_classes == 2
    assert set(np.unique(a.y_train)) <= {0, 1}
    np.testing.assert_array_equal(a.x_train, b.x_train)
    assert not np.array_equal(a.x_train, D.playground(name, n=100, seed=4).x_train)


def test_gaussian_mixture_class_sizes():
    d = D.gaussian_mixture(class_sizes=(50, 10, 5), dim=4)
    assert np.bincount(d.y_train).tolist() == [50, 10, 5]
    assert np.bincount(d.y_test).tolist() == [100, 100, 100]


def test_xor_cluster_label_flips_and_structure():
    d = D.xor_cluster(n_train=2000, n_test=2000, dim=50, label_flip=0.2, seed=0)
    clean = D.xor_cluster(n_train=2000, n_test=2000, dim=50, label_flip=0.0, seed=0)
    assert 0.15 < np.mean(d.y_train != clean.y_train) < 0.25
    # clean labels follow the XOR rule: |x . e1| > |x . e2| for the +-mu_1 clusters (label 1)
    rule = (np.abs(clean.x_test[:, 0]) > np.abs(clean.x_test[:, 1])).astype(int)
    assert np.mean(rule == clean.y_test) > 0.9


@pytest.mark.parametrize("op, f", [("+", lambda a, b: a + b), ("-", lambda a, b: a - b), ("*", lambda a, b: a * b)])
def test_modular_arithmetic_labels(op, f):
    d = D.modular(p=7, op=op, train_fraction=0.5)
    x = np.concatenate([d.x_train, d.x_test])
    y = np.concatenate([d.y_train, d.y_test])
    assert len(x) == 49 and np.all(y == f(x[:, 0], x[:, 1]) % 7)


def test_modular_division_is_multiplication_by_inverse():
    d = D.modular(p=7, op="/", train_fraction=0.5)
    x, y = np.concatenate([d.x_train, d.x_test]), np.concatenate([d.y_train, d.y_test])
    assert len(x) == 42 and np.all((y * x[:, 1]) % 7 == x[:, 0])
    with pytest.raises(ValueError, match="p: division needs a prime"):
        D.modular(p=8, op="/")
    with pytest.raises(ValueError, match="op: must be one of"):
        D.modular(op="%")


def test_digits_and_regression_sets():
    d = D.digits()
    assert d.n_classes == 10 and d.in_dim == 64 and d.x_train.max() <= 1.0
    s = D.sine(n_train=10, n_test=20)
    assert s.task == "regression" and s.x_test.shape == (20, 1)
    t = D.teacher(n_train=10, n_test=5, in_dim=3)
    assert t.x_train.shape == (10, 3) and t.y_train.shape == (10, 1)


def test_teacher_task_is_one_task_at_every_training_set_size():
    """A sweep over n_train (a scaling law) must meet one teacher and one test set; training sets nested."""
    small, large = D.teacher(n_train=8, n_test=16, in_dim=3, seed=5), D.teacher(n_train=32, n_test=16, in_dim=3, seed=5)
    np.testing.assert_array_equal(small.x_test, large.x_test)
    np.testing.assert_array_equal(small.y_test, large.y_test)
    np.testing.assert_array_equal(small.x_train, large.x_train[:8])
    np.testing.assert_array_equal(small.y_train, large.y_train[:8])
    assert not np.array_equal(D.teacher(n_train=8, n_test=16, in_dim=3, seed=6).y_test, small.y_test)
