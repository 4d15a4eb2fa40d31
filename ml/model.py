"""The expression CNN: a VGG-style stack of 3x3 convolutions, small enough to read on one screen.

Input: a batch of grey crops, shape (N, 1, INPUT_SIZE, INPUT_SIZE), float32 scaled to [0, 1]
and normalised by the model itself, so exported models take raw [0, 1] pixels.
Output: logits for the 7 expressions in `ml.labels.EXPRESSIONS` order.
"""

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import paddle
from paddle import nn

from ml.labels import INPUT_SIZE, NUM_CLASSES

# Mean and standard deviation of FER2013 Training pixels, scaled to [0, 1].
PIXEL_MEAN = 0.5077
PIXEL_STD = 0.2550


@dataclass(frozen=True)
class ModelConfig:
    channels: tuple[int, ...] = (32, 64, 128, 256)
    convs_per_stage: int = 2
    hidden: int = 256
    dropout: float = 0.4
    # Crops are resized to this side before the convolutions: 40x40 trains ~35% faster
    # than 48x48 (INPUT_SIZE, no resize) on a 2-core CPU (measured), for less detail.
    working_size: int = 40


def bilinear_resize_matrix(source: int, target: int) -> np.ndarray:
    """(target, source) matrix M with M @ row = the row resized bilinearly (half-pixel centres, edges clamped)."""
    matrix = np.zeros((target, source), np.float32)
    for index in range(target):
        position = max((index + 0.5) * source / target - 0.5, 0.0)
        low = min(int(position), source - 1)
        high = min(low + 1, source - 1)
        fraction = position - low
        matrix[index, low] += 1 - fraction
        matrix[index, high] += fraction
    return matrix


def conv_block(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2D(in_channels, out_channels, 3, padding=1, bias_attr=False),
        nn.BatchNorm2D(out_channels),
        nn.ReLU(),
    )


class ExpressionNet(nn.Layer):
    def __init__(self, config: ModelConfig = ModelConfig()):
        super().__init__()
        self.register_buffer(
            "resize_matrix",
            paddle.to_tensor(bilinear_resize_matrix(INPUT_SIZE, config.working_size)),
            persistable=False,
        )
        self.channels = config.channels
        layers = []
        in_channels = 1
        for out_channels in config.channels:
            for _ in range(config.convs_per_stage):
                layers.append(conv_block(in_channels, out_channels))
                in_channels = out_channels
            layers.append(nn.MaxPool2D(2))
        self.features = nn.Sequential(*layers)
        # Global average pooling keeps the head independent of the working size,
        # so a fine-tune can change that size (40 to 48) and keep every weight.
        self.pool = nn.AdaptiveAvgPool2D(1)
        self.head = nn.Sequential(
            nn.Flatten(),
            nn.Dropout(config.dropout),
            nn.Linear(in_channels, config.hidden),
            nn.BatchNorm1D(config.hidden),
            nn.ReLU(),
            nn.Dropout(config.dropout),
            nn.Linear(config.hidden, NUM_CLASSES),
        )

    def stages(self, count: int) -> nn.Sequential:
        """The first `count` convolution stages (each its convolutions and its pooling), as one layer."""
        per_stage = len(self.features) // len(self.channels)
        return nn.Sequential(*list(self.features)[: count * per_stage])

    def resize(self, x: paddle.Tensor) -> paddle.Tensor:
        """Bilinear resize to the working size as 2-D matrix products over rows, then columns.

        The same numbers as `interpolate(mode="bilinear")`, which Paddle Inference's oneDNN path
        cannot run; 2-D products because oneDNN crashed on broadcast batched ones (batch 8).
        """
        size = self.resize_matrix.shape[0]
        if size == INPUT_SIZE:
            return x
        rows = paddle.matmul(x.reshape([-1, INPUT_SIZE]), self.resize_matrix, transpose_y=True)  # (N*48, 40)
        rows = rows.reshape([-1, INPUT_SIZE, size]).transpose([0, 2, 1]).reshape([-1, INPUT_SIZE])  # (N*40, 48)
        both = paddle.matmul(rows, self.resize_matrix, transpose_y=True)  # (N*40, 40): [column, row]
        return both.reshape([-1, 1, size, size]).transpose([0, 1, 3, 2])

    def pooled_features(self, pixels: paddle.Tensor) -> paddle.Tensor:
        """What the head reads: the last stage's channels averaged over the picture, (N, C, 1, 1)."""
        return self.pool(self.features(self.resize((pixels - PIXEL_MEAN) / PIXEL_STD)))

    def forward(self, pixels: paddle.Tensor) -> paddle.Tensor:
        return self.head(self.pooled_features(pixels))


def load_weights(net: nn.Layer, path: str | Path) -> None:
    """Load a saved state dict into `net`, refusing missing, extra or misshapen weights (Paddle only warns)."""
    missing, unexpected = net.set_state_dict(paddle.load(str(path)))
    if missing or unexpected:
        raise ValueError(
            f"{path} does not fit this net: {len(missing)} weights missing or misshapen ({', '.join(missing[:3])}), "
            f"{len(unexpected)} unexpected ({', '.join(unexpected[:3])})"
        )


def predict_probabilities(net: ExpressionNet, images: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Softmax probabilities (N, 7) for uint8 (N, H, W) crops, in eager mode (training and checkpoints)."""
    was_training = net.training
    net.eval()
    outputs = []
    with paddle.no_grad():
        for start in range(0, len(images), batch_size):
            batch = images[start : start + batch_size].astype(np.float32)[:, None] / 255.0
            outputs.append(nn.functional.softmax(net(paddle.to_tensor(batch)), axis=1).numpy())
    if was_training:
        net.train()
    return np.concatenate(outputs) if outputs else np.empty((0, NUM_CLASSES), np.float32)
