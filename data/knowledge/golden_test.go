package knowledge

// goldenHash is NewHashEncoder(8, 7).Vector("jazz piano jazz").
var goldenHash = []float32{-0.37176344, -0.37176344, -0.37176344, 0.37176344, 0.37176344, 0.18039864, 0.37176344, -0.37176344}
