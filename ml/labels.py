"""The seven expressions, in the one order used by data, model outputs, database and API."""

EXPRESSIONS: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
NUM_CLASSES = len(EXPRESSIONS)
INDEX_OF: dict[str, int] = {label: index for index, label in enumerate(EXPRESSIONS)}

# Side length of the grey square crops the model takes (FER2013's size).
INPUT_SIZE = 48
