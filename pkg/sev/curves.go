package sev

import "crypto/elliptic"

type ecdsaCurveT = elliptic.Curve

func p256() elliptic.Curve { return elliptic.P256() }
func p384() elliptic.Curve { return elliptic.P384() }
