"""Bad input fails early, at the API edge, with a message naming the op and the
shapes/dtypes/values involved (never a NumPy traceback from inside a kernel)."""
from __future__ import annotations

import re

import numpy as np
import pytest

import minitensor as mt
from minitensor import functional as F
from minitensor.errors import DTypeError, IndexOutOfRange, ShapeError


def raises(exc, pattern):
    return pytest.raises(exc, match=re.escape(pattern) if not pattern.startswith("re:") else pattern[3:])


def test_error_classes_derive_from_python_type_and_runtime_error():
    assert issubclass(ShapeError, ValueError) and issubclass(ShapeError, RuntimeError)
    assert issubclass(DTypeError, TypeError) and issubclass(DTypeError, RuntimeError)
    assert issubclass(IndexOutOfRange, IndexError) and issubclass(IndexOutOfRange, RuntimeError)
    assert mt.ShapeError is ShapeError and mt.DTypeError is DTypeError and mt.IndexOutOfRange is IndexOutOfRange
    with pytest.raises(RuntimeError):                 # torch-style except clauses keep working
        mt.ones(2, 3) @ mt.ones(4, 5)


# ----------------------------------------------------------------------------- creation

def test_ragged_lists():
    with raises(ShapeError, "tensor: could not build a tensor from a ragged nested sequence"):
        mt.tensor([[1, 2], [3]])
    with raises(ShapeError, "ragged"):
        mt.tensor([[1.0, 2.0], [3.0, [4.0]]])


def test_non_numeric_data():
    with raises(TypeError, "tensor: NumPy dtype <U1 (string) is not supported; supported: float32"):
        mt.tensor(["a", "b"])


def test_integer_and_bool_tensors_cannot_require_grad():
    with raises(DTypeError, "only floating-point tensors can require gradients; this tensor has dtype int64 (shape (2,))"):
        mt.tensor(np.array([1, 2]), requires_grad=True)
    with raises(DTypeError, "dtype int64 (shape (3,))"):
        mt.arange(3).requires_grad_()
    with raises(DTypeError, "dtype bool"):
        mt.tensor([True, False], requires_grad=True)
    with raises(DTypeError, "dtype int32"):
        mt.zeros(2, dtype="int32", requires_grad=True)


# ----------------------------------------------------------------------------- shapes

@pytest.mark.parametrize("name", ["add", "sub", "mul", "div", "pow", "maximum", "minimum"])
def test_binary_op_shape_mismatch(name):
    fn = getattr(F, name)
    with raises(ShapeError, f"{name}: shapes (2, 3) and (4, 3) cannot be broadcast together"):
        fn(mt.ones(2, 3), mt.ones(4, 3))


def test_operator_shape_mismatch():
    a, b = mt.ones(2, 3), mt.ones(2, 4)
    for expr, name in [(lambda: a + b, "add"), (lambda: a - b, "sub"), (lambda: a * b, "mul"),
                       (lambda: a / b, "div"), (lambda: a ** b, "pow")]:
        with raises(ShapeError, f"{name}: shapes (2, 3) and (2, 4) cannot be broadcast together"):
            expr()
    with raises(ShapeError, "where: shapes (2,) and (2, 3) and (2, 4) cannot be broadcast together"):
        mt.where(np.array([True, False]), a, b)


def test_matmul_shapes():
    with raises(ShapeError, "matmul: shapes (2, 3) and (4, 5) do not align (3 != 4)"):
        mt.ones(2, 3) @ mt.ones(4, 5)
    with raises(ShapeError, "matmul: shapes (3,) and (4,) do not align (3 != 4)"):
        mt.matmul(mt.ones(3), mt.ones(4))
    with raises(ShapeError, "matmul: shapes (2, 3) and (2,) do not align (3 != 2)"):
        mt.ones(2, 3) @ mt.ones(2)
    with raises(ShapeError, "matmul: batch dimensions of shapes (2, 3, 4) and (3, 4, 5) cannot be broadcast"):
        mt.ones(2, 3, 4) @ mt.ones(3, 4, 5)
    with raises(ShapeError, "matmul: both arguments must be at least 1-D, got shapes () and (2,)"):
        mt.tensor(1.0) @ mt.ones(2)


def test_linear_shapes():
    with raises(ShapeError, "linear: input of shape (2, 3) does not match weight of shape (4, 5) (in_features 3 != 5)"):
        F.linear(mt.ones(2, 3), mt.ones(4, 5))
    with raises(ShapeError, "linear: bias of shape (5,) does not match weight of shape (4, 3)"):
        F.linear(mt.ones(2, 3), mt.ones(4, 3), mt.ones(5))
    with raises(ShapeError, "linear: weight must be 2-D (out, in), got shape (3,)"):
        F.linear(mt.ones(2, 3), mt.ones(3))


def test_shape_op_errors():
    x = mt.ones(3, 4)
    with raises(ShapeError, "reshape: cannot reshape a tensor of shape (3, 4) (12 elements) into (5, 3)"):
        x.reshape(5, 3)
    with raises(ShapeError, "reshape: cannot reshape a tensor of shape (3, 4) (12 elements) into (-1, -1)"):
        x.reshape(-1, -1)
    with raises(ShapeError, "permute: axes (0, 0) are not a permutation of the 2 axes of a tensor of shape (3, 4)"):
        x.permute(0, 0)
    with raises(ShapeError, "expand: shapes (3, 4) and (2, 3, 5) cannot be broadcast together"):
        x.expand(2, 3, 5)
    with raises(ShapeError, "expand: cannot expand a tensor of shape (3, 4) to fewer dims (4,)"):
        x.expand(4)
    with raises(ShapeError, "cat: tensors must have the same shape except along axis 0; got (2, 3), (2, 4)"):
        mt.cat([mt.ones(2, 3), mt.ones(2, 4)])
    with raises(ShapeError, "stack: tensors must have the same shape; got (2, 3), (2, 4)"):
        mt.stack([mt.ones(2, 3), mt.ones(2, 4)])
    with raises(ShapeError, "split: sizes [1, 1] do not add up to 3, the size of axis 0 of a tensor of shape (3, 4)"):
        x.split([1, 1])
    with raises(ValueError, "cat: expected a non-empty list of tensors"):
        mt.cat([])
    with raises(ValueError, "chunk: number of chunks must be positive, got 0"):
        x.chunk(0)


@pytest.mark.parametrize("call,pattern", [
    (lambda x: x.sum(2), "sum: axis 2 is out of range for a tensor with 2 dims"),
    (lambda x: x.mean((0, -3)), "mean: axis -3 is out of range for a tensor with 2 dims"),
    (lambda x: x.max(5), "max: axis 5 is out of range"),
    (lambda x: x.softmax(3), "softmax: axis 3 is out of range for a tensor with 2 dims"),
    (lambda x: x.log_softmax(-3), "log_softmax: axis -3 is out of range"),
    (lambda x: x.transpose(0, 2), "transpose: axis 2 is out of range"),
    (lambda x: x.unsqueeze(4), "unsqueeze: axis 4 is out of range for a tensor with 3 dims"),
    (lambda x: mt.cat([x, x], 2), "cat: axis 2 is out of range"),
])
def test_axis_out_of_range(call, pattern):
    with raises(IndexOutOfRange, pattern):
        call(mt.ones(3, 4))


def test_mask_and_condition_errors():
    x = mt.ones(3, 4)
    with raises(DTypeError, "masked_fill: mask must be a bool tensor, got dtype float32"):
        x.masked_fill(mt.ones(3, 4), 0.0)
    with raises(ShapeError, "masked_fill: shapes (3, 4) and (2, 4) cannot be broadcast together"):
        x.masked_fill(np.ones((2, 4), bool), 0.0)
    with raises(ShapeError, "masked_fill: mask of shape (2, 3, 4) does not broadcast to the tensor's shape (3, 4)"):
        x.masked_fill(np.ones((2, 3, 4), bool), 0.0)
    with raises(DTypeError, "where: condition must be a bool tensor, got dtype float64"):
        mt.where(np.ones((3, 4)), x, x)


def test_normalization_and_loss_shapes():
    x = mt.ones(3, 4)
    with raises(ShapeError, "layer_norm: input of shape (3, 4) does not end with normalized_shape (5,)"):
        F.layer_norm(x, 5)
    with raises(ShapeError, "layer_norm: weight of shape (3,) does not match normalized_shape (4,)"):
        F.layer_norm(x, 4, mt.ones(3))
    with raises(ShapeError, "mse_loss: shapes (3, 4) and (2, 4) cannot be broadcast together"):
        F.mse_loss(x, mt.ones(2, 4))
    with raises(ShapeError, "cross_entropy: expected target of shape (3,) for logits of shape (3, 4), got (2,)"):
        F.cross_entropy(x, [0, 1])
    with raises(ShapeError, "cross_entropy: expected target of shape (2, 4) for logits of shape (2, 3, 4), got (2, 5)"):
        F.cross_entropy(mt.ones(2, 3, 4), np.zeros((2, 5), int))
    with raises(ShapeError, "cross_entropy: logits must have a class axis, got a 0-d tensor"):
        F.cross_entropy(mt.tensor(1.0), [0])
    with raises(ShapeError, "nll_loss: expected target of shape (3,) for input of shape (3, 4), got (2,)"):
        F.nll_loss(x, [0, 1])
    with raises(ShapeError, "nll_loss: expected target of shape (3, 2) for input of shape (3, 4, 2), got (3,)"):
        F.nll_loss(mt.ones(3, 4, 2), [0, 1, 2])
    with raises(ShapeError, "embedding: weight must be 2-D (num_embeddings, dim), got (2, 2, 2)"):
        F.embedding([0], mt.ones(2, 2, 2))


def test_attention_shapes():
    q, k, v = mt.ones(2, 3, 4), mt.ones(2, 5, 4), mt.ones(2, 5, 6)
    sdpa = F.scaled_dot_product_attention
    with raises(ShapeError, "scaled_dot_product_attention: query and key embedding sizes differ: (2, 3, 4) vs (2, 5, 3)"):
        sdpa(q, mt.ones(2, 5, 3), v)
    with raises(ShapeError, "scaled_dot_product_attention: key and value lengths differ: (2, 5, 4) vs (2, 4, 6)"):
        sdpa(q, k, mt.ones(2, 4, 6))
    with raises(ShapeError, "scaled_dot_product_attention: attn_mask of shape (4, 5) does not broadcast "
                            "to the attention scores' shape (2, 3, 5)"):
        sdpa(q, k, v, attn_mask=np.ones((4, 5), bool))
    with raises(ShapeError, "scaled_dot_product_attention: query must be at least 2-D (..., T, D), got (4,)"):
        sdpa(mt.ones(4), k, v)
    with raises(DTypeError, "scaled_dot_product_attention: attn_mask must be bool or float, got dtype int64"):
        sdpa(q, k, v, attn_mask=np.ones((3, 5), np.int64))
    with raises(ValueError, "pass either attn_mask or is_causal=True, not both"):
        sdpa(q, k, v, attn_mask=np.ones((3, 5), bool), is_causal=True)


# ----------------------------------------------------------------------------- dtypes

def test_float_indices_are_refused_as_in_torch():
    x = mt.ones(3, 4)
    for index in (np.array([0.5]), np.array([1.0, 2.0])):  # integral floats too (torch refuses them)
        with raises(DTypeError, "getitem: indices must be an integer or bool tensor, got dtype float64"):
            x[index]
    with raises(DTypeError, "embedding: indices must be an integer or bool tensor, got dtype float64 (shape (2,)); convert them with .long()"):
        F.embedding(np.array([0.0, 1.0]), mt.ones(5, 2))
    with raises(DTypeError, "cross_entropy: target of dtype float64 and shape (3,): class indices must be an integer tensor"):
        F.cross_entropy(x, np.array([0.0, 1.0, 2.0]))
    with raises(DTypeError, "nll_loss: indices must be an integer or bool tensor, got dtype float64"):
        F.nll_loss(x, np.array([0.0, 1.0, 2.0]))
    with raises(DTypeError, "embedding: indices must be integers, got bool"):
        F.embedding(np.array([True, False]), mt.ones(5, 2))


@pytest.mark.parametrize("name,call", [
    ("softmax", lambda t: F.softmax(t)), ("log_softmax", lambda t: F.log_softmax(t)),
    ("layer_norm", lambda t: F.layer_norm(t, 3)), ("gelu", lambda t: F.gelu(t)),
    ("var", lambda t: t.var()), ("logsumexp", lambda t: t.logsumexp()),
    ("cross_entropy", lambda t: F.cross_entropy(t.reshape(1, 3), [0])), ("dropout", lambda t: F.dropout(t, 0.5)),
])
def test_bool_and_int_where_float_is_needed(name, call):
    for t, dtype in ((mt.tensor([True, False, True]), "bool"), (mt.arange(3), "int64")):
        with raises(DTypeError, f"{name}: expected a floating-point tensor, got dtype {dtype} (shape "):
            call(t)


def test_bool_arithmetic_errors_name_the_op():
    with raises(DTypeError, "sub: subtracting two bool tensors (shapes (1,) and (1,)) is not supported"):
        mt.tensor([True]) - mt.tensor([False])
    with raises(DTypeError, "neg: negating a bool tensor (shape (2,)) is not supported"):
        -mt.tensor([True, False])


def test_attention_mask_dtype_and_where_condition():
    with raises(DTypeError, "where: condition must be a bool tensor, got dtype int64"):
        mt.where(np.array([1, 0]), mt.ones(2), mt.zeros(2))


# ----------------------------------------------------------------------------- out-of-range values

def test_out_of_range_class_targets():
    x = mt.ones(3, 4)
    with raises(IndexOutOfRange, "cross_entropy: target 4 is out of bounds for 4 classes (logits of shape (3, 4))"):
        F.cross_entropy(x, [0, 1, 4])
    with raises(IndexOutOfRange, "cross_entropy: target -1 is out of bounds for 4 classes"):
        F.cross_entropy(x, [0, -1, 2])
    with raises(IndexOutOfRange, "cross_entropy: target 7 is out of bounds for 3 classes (logits of shape (2, 3, 2))"):
        F.cross_entropy(mt.ones(2, 3, 2), [[0, 1], [7, 2]])
    with raises(IndexOutOfRange, "nll_loss: target 9 is out of bounds for 4 classes (input of shape (3, 4))"):
        F.nll_loss(x, [0, 9, 1])
    F.cross_entropy(x, [0, -100, 2])                           # ignore_index is not out of range


def test_out_of_range_indices():
    x, w = mt.ones(3, 4), mt.ones(5, 2)
    with raises(IndexOutOfRange, "embedding: index 5 is out of range for 5 embeddings (weight of shape (5, 2))"):
        F.embedding([0, 5], w)
    with raises(IndexOutOfRange, "embedding: index -1 is out of range for 5 embeddings"):
        F.embedding([[0, -1]], w)
    with raises(IndexOutOfRange, "embedding: padding_idx 5 is out of range for 5 embeddings"):
        F.embedding([0], w, padding_idx=5)
    with raises(IndexOutOfRange, "getitem: index 5 is out of bounds for axis 0 with size 3 (tensor of shape (3, 4))"):
        x[5]
    with raises(IndexOutOfRange, "getitem: index 7 is out of bounds for axis 0 with size 3 (tensor of shape (3, 4))"):
        x[np.array([0, 7])]
    with raises(IndexOutOfRange, "getitem: index -5 is out of bounds for axis 1 with size 4"):
        x[:, mt.tensor(np.array([-5]))]
    with raises(IndexOutOfRange, "re:getitem: boolean index did not match .* \\(tensor of shape \\(3, 4\\)\\)"):
        x[np.ones((2, 2), bool)]
    with raises(IndexOutOfRange, "setitem: index 5 is out of bounds for axis 0 with size 3 (tensor of shape (3, 4))"):
        x[5] = 1.0
    with raises(ShapeError, "setitem: shapes (5,) and (4,) cannot be broadcast together"):
        x[0] = mt.ones(5)
    with raises(IndexOutOfRange, "one_hot: class values must be in [0, 3), got 0..3"):
        F.one_hot(np.array([0, 3]), 3)


# ----------------------------------------------------------------------------- arguments and calls

def test_bad_arguments():
    x = mt.ones(3, 4)
    with raises(ValueError, "dropout: probability has to be between 0 and 1, but got 1.5"):
        F.dropout(x, 1.5)
    with raises(ValueError, "cross_entropy: reduction must be 'mean', 'sum' or 'none', got 'avg'"):
        F.cross_entropy(x, [0, 1, 2], reduction="avg")
    with raises(ValueError, "cross_entropy: label_smoothing must be in [0, 1], got 1.5"):
        F.cross_entropy(x, [0, 1, 2], label_smoothing=1.5)
    with raises(ValueError, "mse_loss: reduction must be 'mean', 'sum' or 'none', got 'max'"):
        F.mse_loss(x, x, reduction="max")
    with raises(ValueError, "gelu: approximate must be 'none' or 'tanh', got 'fast'"):
        F.gelu(x, approximate="fast")
    with raises(ValueError, "clamp: at least one of min and max must be given"):
        x.clamp()
    with raises(TypeError, "got both a value (0) and its alias (1)"):
        x.sum(0, dim=1)
    with raises(ValueError, "item(): only one-element tensors can be converted to a Python scalar; this one has shape (3, 4)"):
        x.item()
    with raises(ValueError, "the truth value of a tensor with 12 elements is ambiguous"):
        bool(x)


def test_backward_errors():
    x = mt.ones(2, 3, requires_grad=True)
    with raises(RuntimeError, "backward: grad can be implicitly created only for scalar outputs; this tensor has shape (2, 3)"):
        (x * 2).backward()
    with raises(ShapeError, "backward: gradient of shape (3, 2) does not match the tensor's shape (2, 3)"):
        (x * 2).backward(np.ones((3, 2)))
    with raises(RuntimeError, "backward: this tensor (shape (2, 3)) does not require grad"):
        mt.ones(2, 3).backward(np.ones((2, 3)))
    with raises(RuntimeError, "numpy(): can't call numpy() on a tensor that requires grad"):
        x.numpy()


def test_errors_happen_before_any_kernel_runs(backend):
    """Shape checks in the functional layer: the kernels never see bad input."""
    with raises(ShapeError, "layer_norm: input of shape (2, 3) does not end with normalized_shape (4,)"):
        F.layer_norm(mt.ones(2, 3), 4, mt.ones(4), mt.ones(4))
    with raises(IndexOutOfRange, "cross_entropy: target 3 is out of bounds for 3 classes"):
        F.cross_entropy(mt.ones(2, 3), [3, 0])
