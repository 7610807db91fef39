# Excerpt of qai_hub_models/_version.py from qai_hub_models-0.65.0-py3-none-any.whl
__version__: str
__version__ = version = '0.65.0'
