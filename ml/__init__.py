"""The expression model: labels, data readers, faces, net, training, evaluation, inference.

Plain Python on PaddlePaddle, NumPy and Pillow; nothing here imports Django.
"""
