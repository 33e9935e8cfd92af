package train

import "math"

// lrAt is the learning rate at step (from 0) of total: linear warm-up over
// Warmup steps, then the decay, never below MinRatio·lr.
func (s Schedule) lrAt(base float64, step, total int) float64 {
	if s.Warmup > 0 && step < s.Warmup {
		return base * float64(step+1) / float64(s.Warmup)
	}
	floor := base * s.MinRatio
	span := max(total-s.Warmup, 1)
	progress := math.Min(float64(step-s.Warmup)/float64(span), 1)
	switch s.Decay {
	case DecayCosine:
		return floor + (base-floor)*0.5*(1+math.Cos(math.Pi*progress))
	case DecayLinear:
		return floor + (base-floor)*(1-progress)
	case DecayStep:
		return math.Max(base*math.Pow(s.Gamma, float64((step-s.Warmup)/s.StepSize)), floor)
	}
	return base
}
