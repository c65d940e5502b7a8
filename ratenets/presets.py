"""One preset mechanism for every rule: named configs, each for one dataset, over the paper's defaults.

A rule class lists its presets in ``PRESETS`` (name -> :class:`Preset`) and inherits :meth:`Presets.preset`.
The preset named after a dataset is that dataset's default, the one ``ratespike train RULE --dataset D``
uses; other names are variants for a dataset, spelled ``<dataset>-<variant>`` (``mnist-3layer``,
``gabor-paper``), chosen with ``--preset NAME``. A preset holds only the field values that differ from the
config class's defaults (the paper's values, cited in each config), so every config is
``Config(**values)`` and a preset shows at a glance what it changes.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from bridge.errors import ConfigError, unknown_choice


@dataclass(frozen=True)
class Preset:
    """Field values over a config's defaults, for one dataset."""

    dataset: str
    values: Mapping[str, Any] = field(default_factory=dict)
    doc: str = ""


def for_datasets(table: Mapping[str, Mapping[str, Any]], *, suffix: str = "",
                 base: Mapping[str, Mapping[str, Any]] | None = None, doc: str = "") -> dict[str, Preset]:
    """Presets from a ``{dataset: values}`` table, named ``dataset + suffix``.

    ``base``: a table whose values for the same dataset come first (a variant layered on the default).
    """
    return {d + suffix: Preset(d, {**(base or {}).get(d, {}), **v}, doc) for d, v in table.items()}


class Presets:
    """Mixin of every rule class: ``PRESETS`` and the one way to build a config from it."""

    name: ClassVar[str] = ""
    Config: ClassVar[type] = object
    #: preset name -> Preset; the preset named after a dataset is that dataset's default
    PRESETS: ClassVar[Mapping[str, Preset]] = {}
    #: the datasets of ``PRESETS`` (derived from it for every subclass)
    datasets: ClassVar[tuple[str, ...]] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.datasets = cls.preset_datasets()

    @classmethod
    def preset_datasets(cls) -> tuple[str, ...]:
        """The datasets this rule has presets for, in the order of ``PRESETS``."""
        return tuple(dict.fromkeys(p.dataset for p in cls.PRESETS.values()))

    @classmethod
    def preset_values(cls, preset: Preset) -> dict[str, Any]:
        """The field values of ``preset`` (a rule family may add fields it always pins)."""
        return dict(preset.values)

    @classmethod
    def preset(cls, dataset: str, name: str | None = None) -> Any:
        """The config of preset ``name`` (default: the one named after ``dataset``) for ``dataset``.

        Raises
        ------
        ConfigError
            For an unknown dataset, a dataset without a default preset, an unknown preset name (one line
            listing the valid ones), or a preset made for another dataset.
        """
        from ratenets.data import check_dataset_name

        check_dataset_name(dataset)
        if name is None:
            if dataset not in cls.PRESETS:
                raise ConfigError(f"rule {cls.name!r} has no preset for dataset {dataset!r} "
                                  f"(supported: {', '.join(cls.preset_datasets())})")
            name = dataset
        if name not in cls.PRESETS:
            raise unknown_choice(f"{cls.name} preset", name, cls.PRESETS)
        p = cls.PRESETS[name]
        if p.dataset != dataset:
            raise ConfigError(f"preset {name!r} of rule {cls.name!r} is for dataset {p.dataset!r}, not {dataset!r}; "
                              f"use --dataset {p.dataset} (or leave --dataset out)")
        return cls.Config(**cls.preset_values(p))


def dataset_of(rule_cls: type, name: str) -> str:
    """The dataset preset ``name`` of ``rule_cls`` is for; one line listing the valid names if unknown."""
    presets = getattr(rule_cls, "PRESETS", {})
    if name not in presets:
        raise unknown_choice(f"{rule_cls.name} preset", name, presets)
    return presets[name].dataset
