"""What a user's type checker sees of every public name (never run).

tests/test_types.py runs pyright over this file and checks that each revealed type
is a real class or function, not Unknown or Any (a name resolved only at run time).
Every name of the ``__all__`` of these modules must be here (the test checks that).
"""

import modelfit_core
import modelfit_core.compat.fitter
import modelfit_core.compat.inferencer
import modelfit_core.compat.metric
import modelfit_core.compat.optimizer
import modelfit_core.compat.simulator
import modelfit_core.compat.tests
import modelfit_core.compat.utils
import modelfit_core.testing

# modelfit_core
reveal_type(modelfit_core.ArgumentTypeError)
reveal_type(modelfit_core.Brian2RuntimeBackend)
reveal_type(modelfit_core.Brian2StandaloneBackend)
reveal_type(modelfit_core.CPPStandaloneSimulator)
reveal_type(modelfit_core.ConfigurationError)
reveal_type(modelfit_core.DaskBackend)
reveal_type(modelfit_core.DataError)
reveal_type(modelfit_core.DuplicatePluginError)
reveal_type(modelfit_core.FeatureMetric)
reveal_type(modelfit_core.Feedback)
reveal_type(modelfit_core.FitStateError)
reveal_type(modelfit_core.FitStore)
reveal_type(modelfit_core.Fitter)
reveal_type(modelfit_core.FittingProblem)
reveal_type(modelfit_core.GammaFactor)
reveal_type(modelfit_core.HH_MODEL)
reveal_type(modelfit_core.Inferencer)
reveal_type(modelfit_core.LeastSquaresMetric)
reveal_type(modelfit_core.MSEMetric)
reveal_type(modelfit_core.Metric)
reveal_type(modelfit_core.MetricWithUnits)
reveal_type(modelfit_core.ModelDefinitionError)
reveal_type(modelfit_core.ModelfitError)
reveal_type(modelfit_core.NSGA2Optimizer)
reveal_type(modelfit_core.NSGA3Optimizer)
reveal_type(modelfit_core.NevergradOptimizer)
reveal_type(modelfit_core.OnlineTraceFitter)
reveal_type(modelfit_core.Optimizer)
reveal_type(modelfit_core.ParameterError)
reveal_type(modelfit_core.ParameterSpace)
reveal_type(modelfit_core.Parts)
reveal_type(modelfit_core.Pipeline)
reveal_type(modelfit_core.PluginContractError)
reveal_type(modelfit_core.PluginLoadError)
reveal_type(modelfit_core.ProgressBar)
reveal_type(modelfit_core.ProgressBarFeedback)
reveal_type(modelfit_core.PymooOptimizer)
reveal_type(modelfit_core.Registry)
reveal_type(modelfit_core.ResidualForm)
reveal_type(modelfit_core.RuntimeSimulator)
reveal_type(modelfit_core.SimulationBackend)
reveal_type(modelfit_core.SimulationError)
reveal_type(modelfit_core.SimulationResult)
reveal_type(modelfit_core.SimulationSpec)
reveal_type(modelfit_core.Simulator)
reveal_type(modelfit_core.SkoptOptimizer)
reveal_type(modelfit_core.SpikeFitter)
reveal_type(modelfit_core.SpikeMetric)
reveal_type(modelfit_core.StorageError)
reveal_type(modelfit_core.TextFeedback)
reveal_type(modelfit_core.WebDashboard)
reveal_type(modelfit_core.TraceFitter)
reveal_type(modelfit_core.TraceMetric)
reveal_type(modelfit_core.UnitMismatchError)
reveal_type(modelfit_core.UnknownPluginError)
reveal_type(modelfit_core.calc_bounds)
reveal_type(modelfit_core.calc_eFEL)
reveal_type(modelfit_core.calc_prior)
reveal_type(modelfit_core.callback_none)
reveal_type(modelfit_core.callback_setup)
reveal_type(modelfit_core.callback_text)
reveal_type(modelfit_core.configure_simulator)
reveal_type(modelfit_core.firing_rate)
reveal_type(modelfit_core.get_full_namespace)
reveal_type(modelfit_core.get_gamma_factor)
reveal_type(modelfit_core.get_param_dic)
reveal_type(modelfit_core.get_param_dict)
reveal_type(modelfit_core.get_sensitivity_equations)
reveal_type(modelfit_core.get_sensitivity_init)
reveal_type(modelfit_core.get_spikes)
reveal_type(modelfit_core.hookimpl)
reveal_type(modelfit_core.hookspec)
reveal_type(modelfit_core.initialize_neurons)
reveal_type(modelfit_core.initialize_parameter)
reveal_type(modelfit_core.load_hh_dataset)
reveal_type(modelfit_core.make_dic)
reveal_type(modelfit_core.normalize_weights)
reveal_type(modelfit_core.run_again)
reveal_type(modelfit_core.set_parameter_value)
reveal_type(modelfit_core.set_states)
reveal_type(modelfit_core.setup_fit)

# modelfit_core.compat.fitter
reveal_type(modelfit_core.compat.fitter.Fitter)
reveal_type(modelfit_core.compat.fitter.OnlineTraceFitter)
reveal_type(modelfit_core.compat.fitter.SpikeFitter)
reveal_type(modelfit_core.compat.fitter.TraceFitter)
reveal_type(modelfit_core.compat.fitter.get_full_namespace)
reveal_type(modelfit_core.compat.fitter.get_param_dic)
reveal_type(modelfit_core.compat.fitter.get_sensitivity_equations)
reveal_type(modelfit_core.compat.fitter.get_sensitivity_init)
reveal_type(modelfit_core.compat.fitter.get_spikes)
reveal_type(modelfit_core.compat.fitter.setup_fit)

# modelfit_core.compat.inferencer
reveal_type(modelfit_core.compat.inferencer.Inferencer)
reveal_type(modelfit_core.compat.inferencer.calc_prior)
reveal_type(modelfit_core.compat.inferencer.configure_simulator)
reveal_type(modelfit_core.compat.inferencer.get_full_namespace)
reveal_type(modelfit_core.compat.inferencer.get_param_dict)

# modelfit_core.compat.metric
reveal_type(modelfit_core.compat.metric.FeatureMetric)
reveal_type(modelfit_core.compat.metric.GammaFactor)
reveal_type(modelfit_core.compat.metric.MSEMetric)
reveal_type(modelfit_core.compat.metric.Metric)
reveal_type(modelfit_core.compat.metric.SpikeMetric)
reveal_type(modelfit_core.compat.metric.TraceMetric)
reveal_type(modelfit_core.compat.metric.calc_eFEL)
reveal_type(modelfit_core.compat.metric.firing_rate)
reveal_type(modelfit_core.compat.metric.get_gamma_factor)
reveal_type(modelfit_core.compat.metric.normalize_weights)

# modelfit_core.compat.optimizer
reveal_type(modelfit_core.compat.optimizer.NSGA2Optimizer)
reveal_type(modelfit_core.compat.optimizer.NSGA3Optimizer)
reveal_type(modelfit_core.compat.optimizer.NevergradOptimizer)
reveal_type(modelfit_core.compat.optimizer.Optimizer)
reveal_type(modelfit_core.compat.optimizer.PymooOptimizer)
reveal_type(modelfit_core.compat.optimizer.SkoptOptimizer)
reveal_type(modelfit_core.compat.optimizer.calc_bounds)

# modelfit_core.compat.simulator
reveal_type(modelfit_core.compat.simulator.CPPStandaloneSimulator)
reveal_type(modelfit_core.compat.simulator.RuntimeSimulator)
reveal_type(modelfit_core.compat.simulator.Simulator)
reveal_type(modelfit_core.compat.simulator.initialize_neurons)
reveal_type(modelfit_core.compat.simulator.initialize_parameter)
reveal_type(modelfit_core.compat.simulator.run_again)
reveal_type(modelfit_core.compat.simulator.set_parameter_value)
reveal_type(modelfit_core.compat.simulator.set_states)

# modelfit_core.compat.tests
reveal_type(modelfit_core.compat.tests.run)

# modelfit_core.compat.utils
reveal_type(modelfit_core.compat.utils.ProgressBar)
reveal_type(modelfit_core.compat.utils.callback_none)
reveal_type(modelfit_core.compat.utils.callback_setup)
reveal_type(modelfit_core.compat.utils.callback_text)
reveal_type(modelfit_core.compat.utils.make_dic)

# modelfit_core.testing
reveal_type(modelfit_core.testing.check_backend)
reveal_type(modelfit_core.testing.check_feedback)
reveal_type(modelfit_core.testing.check_gradient_optimizer)
reveal_type(modelfit_core.testing.check_inference)
reveal_type(modelfit_core.testing.check_multiobjective_optimizer)
reveal_type(modelfit_core.testing.check_optimizer)
reveal_type(modelfit_core.testing.check_registered)
reveal_type(modelfit_core.testing.check_spike_metric)
reveal_type(modelfit_core.testing.check_trace_metric)
reveal_type(modelfit_core.testing.objective_problems)
reveal_type(modelfit_core.testing.optimizer_problems)
reveal_type(modelfit_core.testing.spike_cases)
reveal_type(modelfit_core.testing.trace_cases)
