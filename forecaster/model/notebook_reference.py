"""The notebook's model and training loop, kept as the executable specification.

This is the seed notebook's `SimpleLSTM` and its DataLoader + autograd + Adam loop,
with one change: the notebook seeded the cell state from `h_1` when `c_1` was
given; here `c_1` seeds it. With no state passed in (the only way the notebook
calls it) the two are identical. It is slow on purpose: the parity tests and the
benchmarks measure the fast path (`forecaster.model.training`) against it. It needs
torch, the `reference` extra (`pip install 'forecaster[reference]'`); nothing the daemon
runs imports this module.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from forecaster.model.cell import PARAMETER_NAMES


class SimpleLSTM(nn.Module):
    """One LSTM cell with scalar weights, unrolled over the lags (x_1 first)."""

    def __init__(self) -> None:
        super().__init__()
        # Same creation order as the notebook, so torch.manual_seed(0) gives the same weights.
        self.w_f = nn.Parameter(torch.rand(1))
        self.u_f = nn.Parameter(torch.rand(1))
        self.b_f = nn.Parameter(torch.tensor(0.0))
        self.w_i = nn.Parameter(torch.rand(1))
        self.u_i = nn.Parameter(torch.rand(1))
        self.b_i = nn.Parameter(torch.tensor(0.0))
        self.w_o = nn.Parameter(torch.rand(1))
        self.u_o = nn.Parameter(torch.rand(1))
        self.b_o = nn.Parameter(torch.tensor(0.0))
        self.w_c = nn.Parameter(torch.rand(1))
        self.u_c = nn.Parameter(torch.rand(1))
        self.b_c = nn.Parameter(torch.tensor(0.0))

    def cell(self, x: torch.Tensor, h: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        forget = torch.sigmoid(self.w_f * x + self.u_f * h + self.b_f)
        remember = torch.sigmoid(self.w_i * x + self.u_i * h + self.b_i)
        candidate = torch.relu(self.w_c * x + self.u_c * h + self.b_c)
        c_next = forget * c + remember * candidate
        output = torch.sigmoid(self.w_o * x + self.u_o * h + self.b_o)
        return output * torch.relu(c_next), c_next

    def forward(
        self,
        inputs: torch.Tensor,
        h_1: torch.Tensor | None = None,
        c_1: torch.Tensor | None = None,
    ) -> torch.Tensor:
        h = torch.zeros(1) if h_1 is None else h_1
        c = torch.zeros(1) if c_1 is None else c_1
        for x in inputs.t():  # inputs: (batch, lags), x_1 first
            h, c = self.cell(x, h, c)
        return h

    def named_values(self) -> dict[str, float]:
        return {name: float(getattr(self, name).detach().reshape(-1)[0]) for name in PARAMETER_NAMES}

    def load_values(self, values: dict[str, float]) -> None:
        with torch.no_grad():
            for name in PARAMETER_NAMES:
                parameter = getattr(self, name)
                parameter.copy_(torch.full_like(parameter, float(values[name])))


def notebook_initial_values() -> dict[str, float]:
    """The notebook's starting weights: torch.rand after torch.manual_seed(0), biases 0."""
    torch.manual_seed(0)
    return SimpleLSTM().named_values()


def train_like_notebook(
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    epochs: int,
    initial_values: dict[str, float] | None = None,
    batch_size: int = 40,
    learning_rate: float = 1e-4,
) -> tuple[SimpleLSTM, list[float]]:
    """The notebook's loop: DataLoader in date order, MSE, Adam. Returns the model and
    each epoch's mean batch loss."""
    torch.manual_seed(0)
    model = SimpleLSTM()
    if initial_values is not None:
        model.load_values(initial_values)
    loader = DataLoader(TensorDataset(x, y), batch_size=batch_size)
    criterion = nn.MSELoss()
    optimizer = torch.optim.Adam(model.parameters(), lr=learning_rate)
    epoch_losses: list[float] = []
    for _ in range(epochs):
        total_loss = 0.0
        model.train()
        for inputs, target in loader:
            optimizer.zero_grad()
            loss = criterion(model(inputs), target)
            loss.backward()
            optimizer.step()
            total_loss += loss.item()
        epoch_losses.append(total_loss / len(loader))
    return model, epoch_losses
