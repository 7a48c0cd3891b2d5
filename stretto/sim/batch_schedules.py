"""Generated batch-size schedules for adaptive jobs, when a workload gives none explicitly.

Patterns after the two adaptation methods Shockwave evaluates (whose exact per-model epochs are
hard-coded in Shockwave; these are Stretto's parametrised versions):
- GNS (gradient-noise-scale) doubling: the batch doubles at fixed fractions of training, up to
  the largest allowed batch size;
- Accordion: the small batch inside "critical regimes" (the first 10 % of training and a short
  window at each later quarter boundary), the large batch elsewhere.
"""

from __future__ import annotations

from collections.abc import Sequence

from stretto.core.snapshots import AdaptationMode

GNS_DOUBLING_FRACTIONS = (0.2, 0.35, 0.55)
ACCORDION_CRITICAL = ((0.0, 0.1), (0.5, 0.55), (0.75, 0.8))


def gns_schedule(*, epochs: int, initial: int, largest: int) -> tuple[tuple[int, int], ...]:
    schedule = [(0, initial)]
    batch = initial
    for fraction in GNS_DOUBLING_FRACTIONS:
        if batch * 2 > largest:
            break
        batch *= 2
        epoch = int(fraction * epochs)
        if epoch <= schedule[-1][0]:
            schedule[-1] = (schedule[-1][0], batch)
        else:
            schedule.append((epoch, batch))
    return tuple(schedule)


def accordion_schedule(*, epochs: int, small: int, large: int) -> tuple[tuple[int, int], ...]:
    schedule: list[tuple[int, int]] = []
    for start, end in ACCORDION_CRITICAL:
        first, last = int(start * epochs), max(int(end * epochs), int(start * epochs) + 1)
        if first >= epochs:
            break
        if not schedule or schedule[-1][1] != small:
            schedule.append((first, small))
        if last < epochs:
            schedule.append((last, large))
    return tuple(schedule) or ((0, small),)


def schedule_for(
    mode: AdaptationMode, *, epochs: int, initial: int, batch_sizes: Sequence[int]
) -> tuple[tuple[int, int], ...]:
    largest = max([initial, *batch_sizes])
    if mode is AdaptationMode.GNS:
        return gns_schedule(epochs=epochs, initial=initial, largest=largest)
    if mode is AdaptationMode.ACCORDION:
        return accordion_schedule(epochs=epochs, small=initial, large=largest)
    return ((0, initial),)
