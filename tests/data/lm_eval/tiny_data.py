"""Loads the tiny tasks' JSONL files from this folder, wherever lm-eval runs from.

``dataset_kwargs: {data_files: ...}`` would be resolved by ``datasets`` against the working
directory (lm-eval resolves only ``include:`` and ``!function`` next to the YAML), so the tasks
use ``custom_dataset: !function tiny_data.load`` instead.
"""

import json
from pathlib import Path


def load(name: str, **_metadata):
    from datasets import Dataset, DatasetDict

    lines = (Path(__file__).parent / f"{name}.jsonl").read_text().splitlines()
    return DatasetDict({"test": Dataset.from_list([json.loads(x) for x in lines if x.strip()])})
