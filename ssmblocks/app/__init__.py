"""``ssmblocks app``: a local web page to restore images and short videos, for people who do not write code.

    pip install 'ssmblocks[app]'
    ssmblocks app                   # then open http://127.0.0.1:7860

Modules: ``models`` (the models the page offers and how it loads them), ``jobs`` (checking, restoring and writing
the dropped files; every problem becomes a message), ``page`` (the Gradio page; imports Gradio), ``serve`` (the
command: host, port, warnings). Only ``page`` needs Gradio.
"""
