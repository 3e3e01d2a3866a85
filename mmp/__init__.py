"""mmp: Modern ML Pipeline, a declarative config compiler for tabular machine learning."""

__version__ = "0.1.0"
