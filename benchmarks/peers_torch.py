"""The benchmark models in PyTorch, trained eagerly or through `torch.compile`.

Layouts are PyTorch's own: images NCHW, sequences batch-first [B, T, C]. `torch.compile` wraps the
model only (the usual recipe); the loss, backward call and Adam update run eagerly around it.
The LSTMs take no mask: the benchmark's sequences contain no padding, so packing them with
`pack_padded_sequence` would not change the result.
"""

import torch
from torch import nn
from torch.nn import functional as F

import common


class CNN(nn.Module):
  """The tutorial CNN on f32[B, 1, 28, 28] images."""

  def __init__(self):
    super().__init__()
    layers = []
    channels = common.IMAGE_SHAPE[-1]
    for index, features in enumerate(common.CONV_FEATURES):
      layers += [nn.Conv2d(channels, features, common.CONV_KERNEL), nn.ReLU()]
      if index < len(common.CONV_FEATURES) - 1:
        layers.append(nn.MaxPool2d(2))
      channels = features
    self.features = nn.Sequential(*layers)
    self.hidden = nn.LazyLinear(common.HIDDEN_UNITS)
    self.logits = nn.Linear(common.HIDDEN_UNITS, common.NUM_CLASSES)

  def forward(self, images: torch.Tensor) -> torch.Tensor:
    x = self.features(images).flatten(1)
    return self.logits(F.relu(self.hidden(x)))


class LSTMClassifier(nn.Module):
  """Embedding -> LSTM (sequences) -> [self-attention] -> LSTM (last state) -> Dense."""

  def __init__(self, *, attention: bool):
    super().__init__()
    self.attention = attention
    self.embedding = nn.Embedding(common.VOCAB_SIZE, common.EMBEDDING_DIM)
    self.lstm0 = nn.LSTM(common.EMBEDDING_DIM, common.LSTM_UNITS, batch_first=True)
    self.lstm1 = nn.LSTM(common.LSTM_UNITS, common.LSTM_UNITS, batch_first=True)
    self.logits = nn.Linear(common.LSTM_UNITS, common.NUM_CLASSES)

  def forward(self, ids: torch.Tensor) -> torch.Tensor:
    x, _ = self.lstm0(self.embedding(ids))  # [B, T, U]
    if self.attention:
      # Scaled dot-product self-attention, one head; padded keys get no weight.
      scores = torch.bmm(x, x.transpose(1, 2)) * x.shape[-1] ** -0.5  # [B, T, S]
      key_mask = (ids != 0)[:, None, :]  # [B, 1, S]
      scores = scores.masked_fill(~key_mask, torch.finfo(scores.dtype).min)
      x = torch.bmm(torch.softmax(scores, dim=-1), x)  # [B, T, U]
    _, (hidden, _) = self.lstm1(x)  # [1, B, U]
    return self.logits(hidden[-1])


class EncoderBlock(nn.Module):
  """Pre-norm encoder block as in jaxmodels: x + Drop(MHA(LN(x))), then y + Drop(MLP(LN(y)))."""

  def __init__(self):
    super().__init__()
    width = common.TRANSFORMER_WIDTH
    self.attention_norm = nn.LayerNorm(width, eps=common.LAYER_NORM_EPSILON)
    self.attention = nn.MultiheadAttention(width, common.TRANSFORMER_HEADS, batch_first=True)
    self.mlp_norm = nn.LayerNorm(width, eps=common.LAYER_NORM_EPSILON)
    self.mlp_hidden = nn.Linear(width, common.TRANSFORMER_MLP)
    self.mlp_output = nn.Linear(common.TRANSFORMER_MLP, width)
    self.dropout = nn.Dropout(common.TRANSFORMER_DROPOUT)

  def forward(self, x: torch.Tensor, padding: torch.Tensor) -> torch.Tensor:
    y = self.attention_norm(x)
    y, _ = self.attention(y, y, y, key_padding_mask=padding, need_weights=False)
    x = x + self.dropout(y)
    y = F.gelu(self.mlp_hidden(self.mlp_norm(x)), approximate="tanh")
    return x + self.dropout(self.mlp_output(y))


class TransformerClassifier(nn.Module):
  """Token and position embeddings -> pre-norm blocks -> LayerNorm -> masked mean -> Dense."""

  def __init__(self):
    super().__init__()
    width = common.TRANSFORMER_WIDTH
    self.tokens = nn.Embedding(common.VOCAB_SIZE, width)
    self.positions = nn.Embedding(common.SEQUENCE_LENGTH, width)
    self.blocks = nn.ModuleList(EncoderBlock() for _ in range(common.TRANSFORMER_BLOCKS))
    self.final_norm = nn.LayerNorm(width, eps=common.LAYER_NORM_EPSILON)
    self.dropout = nn.Dropout(common.TRANSFORMER_DROPOUT)
    self.logits = nn.Linear(width, common.NUM_CLASSES)

  def forward(self, ids: torch.Tensor) -> torch.Tensor:
    padding = ids == 0  # [B, T]
    # Positions count real tokens only, as in jaxmodels.
    keep = (~padding).long()
    positions = (keep.cumsum(1) - 1).clamp(min=0) * keep  # [B, T]
    x = self.dropout(self.tokens(ids) + self.positions(positions))  # [B, T, C]
    for block in self.blocks:
      x = block(x, padding)
    x = self.final_norm(x)

    # Mean over the real steps only.
    weights = keep.to(x.dtype)[..., None]  # [B, T, 1]
    pooled = (x * weights).sum(1) / weights.sum(1).clamp(min=1.0)  # [B, C]
    return self.logits(self.dropout(pooled))


def create_model(model: str) -> nn.Module:
  """Build the PyTorch module for a benchmark row's model name."""
  if model == "cnn":
    return CNN()
  if model == "lstm":
    return LSTMClassifier(attention=False)
  if model == "lstm_attention":
    return LSTMClassifier(attention=True)
  if model == "transformer":
    return TransformerClassifier()
  raise ValueError(f"model must be one of {common.MODELS}, got {model!r}")


class Trainer:
  """Runs Adam steps of one model on a fixed set of random batches."""

  def __init__(self, model: str, batch_size: int, *, compiled: bool, seed: int):
    torch.manual_seed(seed)
    self.module = create_model(model)
    batches = common.make_batches(model, batch_size, seed=seed)
    self.batches = []
    for batch in batches:
      inputs = torch.from_numpy(batch.inputs)
      if model == "cnn":
        inputs = inputs.permute(0, 3, 1, 2).contiguous()  # NHWC -> NCHW
      else:
        inputs = inputs.long()
      self.batches.append((inputs, torch.from_numpy(batch.labels).long()))

    # Create the lazy layer's parameters before the optimizer collects them.
    with torch.no_grad():
      self.module(self.batches[0][0])
    self.module.train()
    self.optimizer = torch.optim.Adam(
        self.module.parameters(), lr=common.LEARNING_RATE, eps=common.ADAM_EPSILON
    )
    self.forward = torch.compile(self.module) if compiled else self.module
    self.correct = torch.zeros(())
    self.index = 0

  def run(self, num_steps: int) -> None:
    """Run `num_steps` training steps; on CPU they finish before this returns."""
    for _ in range(num_steps):
      inputs, labels = self.batches[self.index % len(self.batches)]
      self.index += 1
      self.optimizer.zero_grad(set_to_none=True)
      logits = self.forward(inputs)
      loss = F.cross_entropy(logits, labels)
      loss.backward()
      self.optimizer.step()

      # Running accuracy, as the other frameworks compute; no host sync.
      with torch.no_grad():
        self.correct += (logits.argmax(-1) == labels).sum()


def create_trainer(model: str, batch_size: int, *, seed: int, compiled: bool) -> Trainer:
  """Build a PyTorch trainer, eager or compiled."""
  return Trainer(model, batch_size, compiled=compiled, seed=seed)


def versions() -> dict[str, str]:
  """Return the version strings this peer runs with."""
  return {
      "torch": torch.__version__,
      "torch_threads": str(torch.get_num_threads()),
      "mkldnn": str(torch.backends.mkldnn.is_available()),
  }
