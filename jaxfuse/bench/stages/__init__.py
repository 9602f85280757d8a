"""The benchmark's stages: each a function that measures and returns a dataclass of figures.

* :func:`setup.environment` → :class:`setup.EnvInfo`: machine, versions, load;
* :func:`setup.setup_model` → :class:`setup.ModelInfo`: the weights, conv FLOPs;
* :func:`pair.matmul_peak` → :class:`pair.MatmulPeak`: the float32 matmul peak;
* :func:`pair.time_pair` → :class:`pair.PairTiming`: one pair fused, compile apart;
* :func:`train.time_train` → ``{loss: train.TrainTiming}``: one train step per loss;
* :func:`kernels.time_conv` → :class:`kernels.ConvKernels`: one convolution alone;
* :func:`folder.plan_folder`, :func:`folder.time_folder` → :class:`folder.FolderTiming`:
  the TNO-21 folder as whole processes;
* :func:`tiled.time_tiled` → :class:`tiled.TiledRun`: a large pair by tiles, peak memory.

Stages print nothing; :mod:`jaxfuse.bench.printer` turns their figures into
the report and :func:`jaxfuse.bench.runner.run` calls them in order.
"""
