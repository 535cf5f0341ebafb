"""Compression stages: each is a function from a saved model to a saved model.

The contract every stage follows (prune, distill, quantize, trim; finetune and
export live in `compress/recipe.py` and `deploy/export.py`):

    def <verb>(run: str | Path, out: str | Path, config: <Verb>Config) -> Path

It reads the model directory `run`, writes a complete model directory `out`
(weights, tokenizer, and `ndogo.json` whose "kind" says how to load it, with the
stage's own extras), and returns `out`. What made the model (the provenance header)
is written by the code that runs stages, `recipe.run_stage`, not by the stage.
Stages with methods (quantize, prune) are packages holding one module per method
(`compress/methods.py` is their registry). Nothing is imported here: `load_runner`
imports exactly the module that loads a kind (`models/runner.py: KIND_MODULES`),
and recipes the module of each stage they use.
"""
