"""The main job's demo (``bash scripts/demo.sh``): the whole pipeline on bundled digits, outside the library.

``pipeline`` trains or reuses a model, streams digits through Kafka into the scorer and reads the
results back from the store; ``__main__`` prints them. It uses the library as any application would.
"""
