"""The expression model: labels, data readers, faces, net, training, evaluation, inference.

Plain Python on PaddlePaddle, NumPy and Pillow; nothing here imports Django.
Importing any `ml` module first applies `ml.runtime`'s settings, which Paddle reads at import.
"""

from ml import runtime  # noqa: F401
