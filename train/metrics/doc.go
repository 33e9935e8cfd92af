// Package metrics computes the evaluation metrics of a multi-scenario
// recommender: exact ROC AUC (ties given their average rank), logloss with
// clipped probabilities, and gAUC (per-user AUC weighted by impressions),
// per scenario and overall.
//
// Predictions are collected batch by batch in an Accumulator and turned into
// a Report by Accumulator.Compute. A metric that is undefined for a slice of
// the data (for example the AUC of a scenario whose labels are all 0) is
// represented explicitly as a nil value with a reason, never as NaN.
package metrics
