//! Several data rows at once: [`Lanes<W>`] ([`F64x4`], [`F64x8`]), W f64
//! lanes with the arithmetic and the functions of the IR, used by the
//! generated kernels to run the per-row program on W samples in one go.
//!
//! Every operation is written lane by lane in plain Rust, branch-free, with
//! no calls into libm for the functions the models use most (exp, log,
//! ln(1 + x), eˣ − 1, tanh, σ, softplus): the compiler turns the identical lanes
//! into vector instructions. Compiled inside a function with
//! `#[target_feature(enable = "avx2")]` (the kernels' runtime checks the CPU
//! once and picks that path) four lanes fill one 256-bit register; eight
//! fill two, so every step is two independent instructions and the long
//! dependency chains of exp and ln (polynomials by Estrin's scheme, to
//! shorten them further) overlap. On other CPUs the same code runs on SSE2
//! halves or scalar, with the same bits (no fused multiply–add is ever used,
//! so every path rounds identically).
//!
//! One lane (W = 1: a single row, as in the tails of a pass and one-sample
//! calls) calls std instead, as the straight-line kernels' scalar code does:
//! the polynomials pay only across lanes, and inlined one lane at a time
//! into a large kernel they are not unrolled and run several times slower.
//!
//! A function with a polynomial comes in two forms with the same bits: its
//! levels written out (the methods of `Lanes`, for code that compiles each
//! function once) or kept as a loop ([`Compact`], for the straight-line
//! kernels, which inline every call).
//!
//! Accuracy: exp, log and friends are within a few units in the last place
//! of the correctly rounded value over the whole f64 range (tested against
//! std); sin, cos, tan, atan and real powers call std lane by lane.

use std::ops::{Add, AddAssign, Div, Mul, Neg, Sub};

/// `f` applied to each lane, written out lane by lane: a call through a
/// closure is not always inlined, and then the lanes are not vectorised.
macro_rules! lanewise {
    ($f:path, $v:expr) => {{
        let a = $v.0;
        Lanes(each_lane!(i => $f(a[i])))
    }};
}

/// `[e(0), e(1), …, e(W − 1)]` for the lane indices of a `W`-lane value
/// (W ≤ 8), written out lane by lane: the branches test a constant and
/// vanish, leaving straight-line code the compiler vectorises. (A loop
/// instead would be unrolled and vectorised too, but costs the compiler
/// minutes on the large generated kernels; a closure per lane is not always
/// inlined.)
macro_rules! each_lane {
    ($i:ident => $e:expr) => {{
        const { assert!(W <= 8, "at most eight lanes") };
        let mut out = [Default::default(); W];
        each_lane!(@ out, $i => $e; 0 1 2 3 4 5 6 7);
        out
    }};
    (@ $out:ident, $i:ident => $e:expr; $($k:literal)*) => {
        $(if $k < W {
            let $i = $k;
            $out[$k] = $e;
        })*
    };
}

/// `W` f64 lanes, one per data row.
#[derive(Debug, Clone, Copy, PartialEq)]
#[repr(C, align(32))]
pub struct Lanes<const W: usize>(pub [f64; W]);

/// Four rows at a time: one AVX2 register.
pub type F64x4 = Lanes<4>;
/// Eight rows at a time: two AVX2 registers, so every step is two
/// independent instructions.
pub type F64x8 = Lanes<8>;

impl<const W: usize> Default for Lanes<W> {
    #[inline(always)]
    fn default() -> Self {
        Self([0.0; W])
    }
}

impl<const W: usize> Lanes<W> {
    /// The same value in every lane.
    #[inline(always)]
    pub fn splat(v: f64) -> Self {
        Self([v; W])
    }

    /// The first W values of `s` (one per lane).
    #[inline(always)]
    pub fn load(s: &[f64]) -> Self {
        let mut a = [0.0; W];
        a.copy_from_slice(&s[..W]);
        Self(a)
    }

    /// The lanes into the first W values of `s`.
    #[inline(always)]
    pub fn store(self, s: &mut [f64]) {
        s[..W].copy_from_slice(&self.0);
    }

    /// f applied to every lane.
    #[inline(always)]
    pub fn map(self, f: impl Fn(f64) -> f64) -> Self {
        let a = self.0;
        Self(each_lane!(i => f(a[i])))
    }

    #[inline(always)]
    fn zip(self, other: Self, f: impl Fn(f64, f64) -> f64) -> Self {
        let (a, b) = (self.0, other.0);
        Self(each_lane!(i => f(a[i], b[i])))
    }

    /// The sum of the lanes, always pairwise in the same order:
    /// ((l0 + l1) + (l2 + l3)) + ((l4 + l5) + (l6 + l7)) for eight.
    #[inline(always)]
    pub fn sum(self) -> f64 {
        const { assert!(W.is_power_of_two()) };
        let mut a = self.0;
        let mut width = W;
        while width > 1 {
            for i in 0..width / 2 {
                a[i] = a[2 * i] + a[2 * i + 1];
            }
            width /= 2;
        }
        a[0]
    }

    /// The larger of each pair of lanes (`f64::max`: a NaN gives the
    /// other).
    #[inline(always)]
    pub fn max(self, other: impl Into<Lanes<W>>) -> Self {
        self.zip(other.into(), f64::max)
    }

    /// eˣ.
    #[inline(always)]
    pub fn exp(self) -> Self {
        if W == 1 {
            lanewise!(f64::exp, self)
        } else {
            self.exp_lanes::<true>()
        }
    }
    /// ln x.
    #[inline(always)]
    pub fn ln(self) -> Self {
        if W == 1 {
            lanewise!(f64::ln, self)
        } else {
            self.ln_lanes::<true>()
        }
    }
    /// ln(1 + x), accurate for small x.
    #[inline(always)]
    pub fn ln_1p(self) -> Self {
        if W == 1 {
            lanewise!(f64::ln_1p, self)
        } else {
            self.ln_1p_lanes::<true>()
        }
    }
    /// eˣ − 1, accurate for small x.
    #[inline(always)]
    pub fn exp_m1(self) -> Self {
        if W == 1 {
            lanewise!(f64::exp_m1, self)
        } else {
            self.exp_m1_lanes::<true>()
        }
    }
    /// tanh x.
    #[inline(always)]
    pub fn tanh(self) -> Self {
        if W == 1 {
            lanewise!(f64::tanh, self)
        } else {
            self.tanh_lanes::<true>()
        }
    }
    /// σ(x), without overflow for either sign.
    #[inline(always)]
    pub fn sigmoid(self) -> Self {
        if W == 1 {
            lanewise!(crate::math::sigmoid, self)
        } else {
            self.sigmoid_lanes::<true>()
        }
    }
    /// log(1 + eˣ), without overflow.
    #[inline(always)]
    pub fn softplus(self) -> Self {
        if W == 1 {
            lanewise!(crate::math::softplus, self)
        } else {
            self.softplus_lanes::<true>()
        }
    }
    /// √x.
    #[inline(always)]
    pub fn sqrt(self) -> Self {
        lanewise!(f64::sqrt, self)
    }
    /// |x|.
    #[inline(always)]
    pub fn abs(self) -> Self {
        self.bits().and(IntLanes::splat(i64::MAX)).as_f64()
    }
    /// max(0, x).
    #[inline(always)]
    pub fn relu(self) -> Self {
        lanewise!(crate::math::relu, self)
    }
    /// 1 for x > 0, else 0.
    #[inline(always)]
    pub fn step(self) -> Self {
        lanewise!(crate::math::step, self)
    }
    /// −1, 0 or 1.
    #[inline(always)]
    pub fn sign(self) -> Self {
        lanewise!(crate::math::sign, self)
    }
    /// sin x (std, lane by lane).
    #[inline(always)]
    pub fn sin(self) -> Self {
        lanewise!(f64::sin, self)
    }
    /// cos x (std, lane by lane).
    #[inline(always)]
    pub fn cos(self) -> Self {
        lanewise!(f64::cos, self)
    }
    /// tan x (std, lane by lane).
    #[inline(always)]
    pub fn tan(self) -> Self {
        lanewise!(f64::tan, self)
    }
    /// atan x (std, lane by lane).
    #[inline(always)]
    pub fn atan(self) -> Self {
        lanewise!(f64::atan, self)
    }
    /// xⁿ by repeated squaring.
    #[inline(always)]
    pub fn powi(self, n: i32) -> Self {
        self.map(|x| lane::powi(x, n))
    }
    /// xʸ (std, lane by lane).
    #[inline(always)]
    pub fn powf(self, y: impl Into<Lanes<W>>) -> Self {
        self.zip(y.into(), f64::powf)
    }
}

impl<const W: usize> From<f64> for Lanes<W> {
    #[inline(always)]
    fn from(v: f64) -> Self {
        Self::splat(v)
    }
}

macro_rules! binary {
    ($trait:ident, $method:ident, $op:tt) => {
        impl<const W: usize> $trait for Lanes<W> {
            type Output = Lanes<W>;
            #[inline(always)]
            fn $method(self, o: Lanes<W>) -> Lanes<W> {
                self.zip(o, |a, b| a $op b)
            }
        }
        impl<const W: usize> $trait<f64> for Lanes<W> {
            type Output = Lanes<W>;
            #[inline(always)]
            fn $method(self, o: f64) -> Lanes<W> {
                self.map(|a| a $op o)
            }
        }
        impl<const W: usize> $trait<Lanes<W>> for f64 {
            type Output = Lanes<W>;
            #[inline(always)]
            fn $method(self, o: Lanes<W>) -> Lanes<W> {
                o.map(|b| self $op b)
            }
        }
    };
}
binary!(Add, add, +);
binary!(Sub, sub, -);
binary!(Mul, mul, *);
binary!(Div, div, /);

impl<const W: usize> Neg for Lanes<W> {
    type Output = Lanes<W>;
    #[inline(always)]
    fn neg(self) -> Lanes<W> {
        self.map(|a| -a)
    }
}

impl<const W: usize> AddAssign for Lanes<W> {
    #[inline(always)]
    fn add_assign(&mut self, o: Lanes<W>) {
        *self = *self + o;
    }
}

/// Adding a scalar adds it to every lane (every row contributes it).
impl<const W: usize> AddAssign<f64> for Lanes<W> {
    #[inline(always)]
    fn add_assign(&mut self, o: f64) {
        *self = *self + o;
    }
}

/// 1.5 · 2⁵²: adding it rounds a |v| < 2⁵¹ to an integer held in the low
/// mantissa bits (and subtracting it again gives that integer as f64).
const SHIFTER: f64 = 6_755_399_441_055_744.0;
/// ln 2 split in a high part with trailing zero bits and the rest (fdlibm).
const LN2_HI: f64 = f64::from_bits(0x3fe6_2e42_fee0_0000);
const LN2_LO: f64 = f64::from_bits(0x3dea_39ef_3579_3c76);
/// eʳ's Taylor coefficients to r¹³/13! (truncation below 2⁻⁵⁸ for
/// |r| ≤ ½ ln 2).
const EXP_TAYLOR: [f64; 14] = [
    1.0,
    1.0,
    1.0 / 2.0,
    1.0 / 6.0,
    1.0 / 24.0,
    1.0 / 120.0,
    1.0 / 720.0,
    1.0 / 5_040.0,
    1.0 / 40_320.0,
    1.0 / 362_880.0,
    1.0 / 3_628_800.0,
    1.0 / 39_916_800.0,
    1.0 / 479_001_600.0,
    1.0 / 6_227_020_800.0,
];
/// (eʳ − 1)/r's: [`EXP_TAYLOR`] from r¹ on.
const EXP_M1_TAYLOR: [f64; 13] = {
    let mut c = [0.0; 13];
    let mut i = 0;
    while i < 13 {
        c[i] = EXP_TAYLOR[i + 1];
        i += 1;
    }
    c
};

/// `W` i64 lanes: the bit patterns and exponents inside exp and ln, and
/// comparison masks (all ones for true, zero for false).
#[derive(Clone, Copy)]
struct IntLanes<const W: usize>([i64; W]);

macro_rules! int_op {
    ($name:ident, $f:expr) => {
        #[inline(always)]
        fn $name(self, o: IntLanes<W>) -> IntLanes<W> {
            let (a, b) = (self.0, o.0);
            let f = $f;
            IntLanes(each_lane!(i => f(a[i], b[i])))
        }
    };
}

impl<const W: usize> IntLanes<W> {
    #[inline(always)]
    fn splat(v: i64) -> Self {
        Self([v; W])
    }
    int_op!(add, |a: i64, b: i64| a.wrapping_add(b));
    int_op!(sub, |a: i64, b: i64| a.wrapping_sub(b));
    int_op!(and, |a: i64, b: i64| a & b);
    int_op!(or, |a: i64, b: i64| a | b);
    #[inline(always)]
    fn shr<const S: u32>(self) -> IntLanes<W> {
        let a = self.0;
        IntLanes(each_lane!(i => a[i] >> S))
    }
    #[inline(always)]
    fn shl<const S: u32>(self) -> IntLanes<W> {
        let a = self.0;
        IntLanes(each_lane!(i => a[i] << S))
    }
    #[inline(always)]
    fn not(self) -> IntLanes<W> {
        let a = self.0;
        IntLanes(each_lane!(i => !a[i]))
    }
    #[inline(always)]
    fn as_f64(self) -> Lanes<W> {
        let a = self.0;
        Lanes(each_lane!(i => f64::from_bits(a[i] as u64)))
    }
}

macro_rules! compare {
    ($name:ident, $op:tt) => {
        #[inline(always)]
        fn $name(self, o: impl Into<Lanes<W>>) -> IntLanes<W> {
            let (a, b) = (self.0, o.into().0);
            IntLanes(each_lane!(i => -i64::from(a[i] $op b[i])))
        }
    };
}

/// The vectorised functions, written one operation on all eight lanes at a
/// time (each operation becomes one vector instruction), branch-free:
/// special cases are blended in with masks at the end.
impl<const W: usize> Lanes<W> {
    compare!(lt, <);
    compare!(gt, >);
    compare!(ge, >=);
    compare!(eq, ==);

    #[inline(always)]
    fn bits(self) -> IntLanes<W> {
        let a = self.0;
        IntLanes(each_lane!(i => a[i].to_bits() as i64))
    }

    /// `mask ? a : b`, lane by lane.
    #[inline(always)]
    fn select(mask: IntLanes<W>, a: impl Into<Lanes<W>>, b: impl Into<Lanes<W>>) -> Lanes<W> {
        mask.and(a.into().bits())
            .or(mask.not().and(b.into().bits()))
            .as_f64()
    }

    #[inline(always)]
    fn clamp(self, lo: f64, hi: f64) -> Lanes<W> {
        self.map(|v| v.clamp(lo, hi))
    }

    /// p(x) = c₀ + c₁x + … by Estrin's scheme: neighbours are paired with
    /// x, the pairs with x², then x⁴, …, so the chain of dependent
    /// operations is log₂ n deep instead of n (Horner's rule) and the vector
    /// unit's pipelines stay full.
    ///
    /// `UNROLLED` writes the levels out (at most four: n ≤ 16), so that
    /// every loop has a constant trip count and the compiler unrolls it
    /// whole; otherwise they stay a loop over levels. The same operations in
    /// the same order either way, so the same bits. See [`Compact`] for
    /// which is used where.
    #[inline(always)]
    fn polynomial<const UNROLLED: bool, const N: usize>(self, coefficients: &[f64; N]) -> Lanes<W> {
        /// One level: neighbours paired with `power`, an odd one carried.
        #[inline(always)]
        fn level<const W: usize, const N: usize>(
            terms: &mut [Lanes<W>; N],
            len: &mut usize,
            power: &mut Lanes<W>,
        ) {
            for i in 0..*len / 2 {
                terms[i] = terms[2 * i] + terms[2 * i + 1] * *power;
            }
            if *len % 2 == 1 {
                terms[*len / 2] = terms[*len - 1];
            }
            *len = len.div_ceil(2);
            if *len > 1 {
                *power = *power * *power;
            }
        }
        let mut terms: [Self; N] = std::array::from_fn(|i| Self::splat(coefficients[i]));
        let (mut len, mut power) = (N, self);
        if UNROLLED {
            const { assert!(N <= 16, "four levels written out") };
            // Each `len` is a constant here (N is), so each level's loop is.
            if len > 1 {
                level(&mut terms, &mut len, &mut power);
            }
            if len > 1 {
                level(&mut terms, &mut len, &mut power);
            }
            if len > 1 {
                level(&mut terms, &mut len, &mut power);
            }
            if len > 1 {
                level(&mut terms, &mut len, &mut power);
            }
        } else {
            while len > 1 {
                level(&mut terms, &mut len, &mut power);
            }
        }
        terms[0]
    }

    /// x = k ln 2 + r with |r| ≤ ½ ln 2 (Cody–Waite, for |x| < 2⁵¹ ln 2):
    /// k, k as an integer, r.
    #[inline(always)]
    fn reduce_ln2(self) -> (Lanes<W>, IntLanes<W>, Lanes<W>) {
        let shifted = self * std::f64::consts::LOG2_E + SHIFTER;
        let k = shifted - SHIFTER;
        let k_int = shifted
            .bits()
            .sub(IntLanes::splat(SHIFTER.to_bits() as i64));
        (k, k_int, (self - k * LN2_HI) - k * LN2_LO)
    }

    /// 2ᵏ for −1022 ≤ k ≤ 1023 by building the exponent field.
    #[inline(always)]
    fn pow2(k: IntLanes<W>) -> Lanes<W> {
        k.add(IntLanes::splat(1023)).shl::<52>().as_f64()
    }

    /// eˣ: x = k ln 2 + r with |r| ≤ ½ ln 2, eʳ by its Taylor polynomial to
    /// degree 13 (truncation below 2⁻⁵⁸), times 2ᵏ applied in two halves so
    /// that results in the subnormal range are rounded once.
    #[inline(always)]
    fn exp_lanes<const UNROLLED: bool>(self) -> Lanes<W> {
        // Beyond these bounds the result is ∞ or 0 anyway (NaN stays NaN).
        let (_, k_int, r) = self.clamp(-746.0, 710.0).reduce_ln2();
        let p = r.polynomial::<UNROLLED, 14>(&EXP_TAYLOR);
        let half = k_int.shr::<1>();
        p * Self::pow2(half) * Self::pow2(k_int.sub(half))
    }

    /// ln x: x = 2ᵉ m with √½ ≤ m < √2, ln m = 2 atanh(s), s = (m − 1)/(m + 1),
    /// by its series to s²³ (|s| ≤ 0.172, truncation below 2⁻⁶⁰).
    #[inline(always)]
    fn ln_lanes<const UNROLLED: bool>(self) -> Lanes<W> {
        /// The bits of √½, where the mantissa range starts.
        const SQRT_HALF_BITS: i64 = 0x3fe6_a09e_667f_3bcd;
        const ONE_BITS: i64 = 0x3ff0_0000_0000_0000;
        const MANTISSA: i64 = 0x000f_ffff_ffff_ffff;
        let x = self;
        let subnormal = x.lt(f64::MIN_POSITIVE);
        // 2⁵⁴ lifts a subnormal into the normal range.
        let scaled = Self::select(subnormal, x * 18_014_398_509_481_984.0, x);
        let bits = scaled
            .bits()
            .add(IntLanes::splat(ONE_BITS - SQRT_HALF_BITS));
        let e = bits
            .shr::<52>()
            .sub(IntLanes::splat(1023))
            .sub(subnormal.and(IntLanes::splat(54)));
        let m = bits
            .and(IntLanes::splat(MANTISSA))
            .add(IntLanes::splat(SQRT_HALF_BITS))
            .as_f64();
        // e as f64 without an integer conversion instruction (|e| < 2⁵¹).
        let e = e.add(IntLanes::splat(SHIFTER.to_bits() as i64)).as_f64() - SHIFTER;
        let f = m - 1.0;
        let s = f / (2.0 + f);
        let z = s * s;
        const ATANH: [f64; 11] = [
            2.0 / 3.0,
            2.0 / 5.0,
            2.0 / 7.0,
            2.0 / 9.0,
            2.0 / 11.0,
            2.0 / 13.0,
            2.0 / 15.0,
            2.0 / 17.0,
            2.0 / 19.0,
            2.0 / 21.0,
            2.0 / 23.0,
        ];
        let q = z.polynomial::<UNROLLED, 11>(&ATANH);
        // 2s = f − s f, so ln m = f − s (f − q z): the large term f is exact.
        let log_m = f - s * (f - q * z);
        let r = e * LN2_HI + (log_m + e * LN2_LO);
        let r = Self::select(x.eq(f64::INFINITY), x, r);
        let r = Self::select(x.gt(0.0), r, f64::NAN);
        Self::select(x.eq(0.0), f64::NEG_INFINITY, r)
    }

    /// ln(1 + x) = ln(w) · x / (w − 1) with w = 1 + x rounded (Goldberg).
    #[inline(always)]
    fn ln_1p_lanes<const UNROLLED: bool>(self) -> Lanes<W> {
        let w = 1.0 + self;
        let r = w.ln_lanes::<UNROLLED>() * (self / (w - 1.0));
        let r = Self::select(w.eq(f64::INFINITY), w, r);
        Self::select(w.eq(1.0), self, r)
    }

    /// eˣ − 1: x = k ln 2 + r with |r| ≤ ½ ln 2 (as `exp_lanes`), eʳ − 1
    /// = r (1 + r/2 + … + r¹²/13!) by its series (truncated below 2⁻⁵⁶ of
    /// it), then 2ᵏ (eʳ − 1) + (2ᵏ − 1): for k = 0 the series itself (no
    /// cancellation near 0; −0 stays −0), for k > 56 (eʳ)·2ᵏ in two factors
    /// as eˣ (the −1 below half an ulp). One polynomial, where Kahan's
    /// (u − 1)·x / ln u with u = eˣ took two and a division.
    #[inline(always)]
    fn exp_m1_lanes<const UNROLLED: bool>(self) -> Lanes<W> {
        // Below −40 the result rounds to −1, past 710 it is ∞ (NaN stays
        // NaN).
        let (k, k_int, r) = self.clamp(-40.0, 710.0).reduce_ln2();
        let em1 = r * r.polynomial::<UNROLLED, 13>(&EXP_M1_TAYLOR);
        let s = Self::pow2(k_int);
        let half = k_int.shr::<1>();
        let large = (em1 + 1.0) * Self::pow2(half) * Self::pow2(k_int.sub(half));
        let scaled = Self::select(k.gt(56.0), large, s * em1 + (s - 1.0));
        Self::select(k.eq(0.0), em1, scaled)
    }

    /// tanh x = −t / (2 + t) with t = expm1(−2|x|), sign restored.
    #[inline(always)]
    fn tanh_lanes<const UNROLLED: bool>(self) -> Lanes<W> {
        let t = (-2.0 * self.abs()).exp_m1_lanes::<UNROLLED>();
        let magnitude = -t / (2.0 + t);
        let sign = self.bits().and(IntLanes::splat(i64::MIN));
        magnitude.bits().or(sign).as_f64()
    }

    /// σ(x) = 1/(1 + e^{−x}) for x ≥ 0, e^{x}/(1 + e^{x}) otherwise.
    #[inline(always)]
    fn sigmoid_lanes<const UNROLLED: bool>(self) -> Lanes<W> {
        self.sigmoid_with(self.exp_neg_abs_lanes::<UNROLLED>())
    }

    /// softplus(x) = max(x, 0) + ln(1 + e^{−|x|}).
    #[inline(always)]
    fn softplus_lanes<const UNROLLED: bool>(self) -> Lanes<W> {
        self.softplus_with(
            self.exp_neg_abs_lanes::<UNROLLED>()
                .ln_1p_lanes::<UNROLLED>(),
        )
    }

    /// e^{−|x|}: the one exponential inside σ(x), σ(−x), softplus(x) and
    /// softplus(−x), which generated code computes once for all four.
    #[inline(always)]
    pub fn exp_neg_abs(self) -> Lanes<W> {
        (-self.abs()).exp()
    }

    /// e^{−|x|} by the polynomial, whatever W.
    #[inline(always)]
    fn exp_neg_abs_lanes<const UNROLLED: bool>(self) -> Lanes<W> {
        (-self.abs()).exp_lanes::<UNROLLED>()
    }

    /// σ(x) given `e` = [`exp_neg_abs`](Self::exp_neg_abs) of ±x (the same
    /// bits as [`sigmoid`](Self::sigmoid)).
    #[inline(always)]
    pub fn sigmoid_with(self, e: Lanes<W>) -> Lanes<W> {
        Self::select(self.ge(0.0), 1.0, e) / (1.0 + e)
    }

    /// softplus(x) given `l` = ln(1 + e^{−|x|}) (the same bits as
    /// [`softplus`](Self::softplus)).
    #[inline(always)]
    pub fn softplus_with(self, l: Lanes<W>) -> Lanes<W> {
        Self::select(self.gt(0.0), self, 0.0) + l
    }
}

/// The functions computed with a polynomial on lanes, each with its
/// method on any number of lanes: one list for [`Compact`]'s methods and
/// [`lane`]'s functions, given to the macro `$m`.
macro_rules! polynomial_functions {
    ($m:ident) => {
        $m! {
            /// eˣ.
            exp => exp_lanes;
            /// ln x.
            ln => ln_lanes;
            /// ln(1 + x).
            ln_1p => ln_1p_lanes;
            /// eˣ − 1.
            exp_m1 => exp_m1_lanes;
            /// tanh x.
            tanh => tanh_lanes;
            /// σ(x).
            sigmoid => sigmoid_lanes;
            /// softplus(x).
            softplus => softplus_lanes;
            /// e^{−|x|} (see [`Lanes::exp_neg_abs`]).
            exp_neg_abs => exp_neg_abs_lanes;
        }
    };
}

/// [`Lanes`] whose functions keep their polynomials' loop over levels
/// (`x.compact().tanh()`): what the straight-line kernels call.
///
/// [`Lanes`]' own methods write Estrin's levels out, which pays where each
/// function is compiled once and runs over many blocks of rows — a loop
/// kernel's step, a run-time compiled kernel's helper: the logistic L+∇+H
/// pass 7–12 % faster on its loop kernel and 8–18 % at run time. A
/// straight-line kernel inlines every call of a long program, and there the
/// written-out levels cost more than they gain (`mlp_tanh_scalar`'s pass
/// 2.8× slower); with the loop kept, the logistic straight-line pass is 2×
/// faster than before the two forms were told apart (kernels bench,
/// results/kernels.md). Both forms give the same bits.
///
/// The functions without a polynomial are [`Lanes`]' own, through `Deref`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Compact<const W: usize>(pub Lanes<W>);

impl<const W: usize> std::ops::Deref for Compact<W> {
    type Target = Lanes<W>;
    #[inline(always)]
    fn deref(&self) -> &Lanes<W> {
        &self.0
    }
}

impl<const W: usize> Lanes<W> {
    /// These lanes, for functions with their polynomials' loop kept
    /// ([`Compact`]).
    #[inline(always)]
    pub fn compact(self) -> Compact<W> {
        Compact(self)
    }
}

/// One compact method per function with a polynomial: std for one lane (as
/// [`Lanes`]' own), else the loop over levels.
macro_rules! compact_methods {
    ($($(#[$doc:meta])* $name:ident => $lanes:ident;)*) => {
        impl<const W: usize> Compact<W> {
            $(
                $(#[$doc])*
                #[inline(always)]
                pub fn $name(self) -> Lanes<W> {
                    if W == 1 {
                        self.0.$name()
                    } else {
                        self.0.$lanes::<false>()
                    }
                }
            )*
        }
    };
}

polynomial_functions!(compact_methods);

/// The same functions one value at a time (lane 0 of the vector code), so
/// that they can be tested against std and used on their own.
pub mod lane {
    use super::Lanes;

    macro_rules! one_lane {
        ($(#[$doc:meta] $name:ident => $method:ident;)*) => {$(
            #[$doc]
            #[inline(always)]
            pub fn $name(x: f64) -> f64 {
                Lanes::<1>::splat(x).$method::<true>().0[0]
            }
        )*};
    }
    polynomial_functions!(one_lane);

    /// xⁿ by repeated squaring (1/x^|n| for negative n).
    #[inline(always)]
    pub fn powi(x: f64, n: i32) -> f64 {
        let mut base = x;
        let mut e = n.unsigned_abs();
        let mut acc = 1.0;
        while e > 0 {
            if e & 1 == 1 {
                acc *= base;
            }
            base *= base;
            e >>= 1;
        }
        if n < 0 { 1.0 / acc } else { acc }
    }
}

#[cfg(test)]
mod tests {
    use super::lane;
    use super::*;

    /// Distance in units in the last place (0 for equal values, both NaN, or
    /// equal infinities).
    fn ulps(a: f64, b: f64) -> u64 {
        if a == b || (a.is_nan() && b.is_nan()) {
            return 0;
        }
        if a.is_nan() || b.is_nan() || a.is_infinite() || b.is_infinite() {
            return u64::MAX;
        }
        let key = |v: f64| {
            let bits = v.to_bits() as i64;
            if bits < 0 { i64::MIN - bits } else { bits }
        };
        key(a).abs_diff(key(b))
    }

    /// A deterministic spread of values over many magnitudes, both signs.
    fn samples(lo: f64, hi: f64, n: usize) -> Vec<f64> {
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        (0..n)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                lo + (hi - lo) * ((state >> 11) as f64 / (1u64 << 53) as f64)
            })
            .collect()
    }

    fn check(name: &str, ours: fn(f64) -> f64, reference: fn(f64) -> f64, xs: &[f64], max: u64) {
        for &x in xs {
            let (a, b) = (ours(x), reference(x));
            assert!(
                ulps(a, b) <= max,
                "{name}({x:e}) = {a:e}, std says {b:e}: {} ulps",
                ulps(a, b)
            );
        }
    }

    fn log_spread() -> Vec<f64> {
        let mut xs = samples(-745.0, 709.0, 20_000)
            .into_iter()
            .map(f64::exp)
            .collect::<Vec<_>>();
        xs.extend([
            f64::MIN_POSITIVE,
            5e-324,
            1e-310,
            1.0,
            2.0,
            0.5,
            f64::MAX,
            1.0 + 1e-15,
        ]);
        xs
    }

    #[test]
    fn exp_within_two_ulps_over_the_whole_range() {
        let mut xs = samples(-750.0, 712.0, 20_000);
        xs.extend(samples(-1.0, 1.0, 5_000));
        xs.extend([0.0, -0.0, 1e-300, 709.78, -708.4, -744.4, -745.2]);
        check("exp", lane::exp, f64::exp, &xs, 2);
        assert_eq!(lane::exp(f64::INFINITY), f64::INFINITY);
        assert_eq!(lane::exp(f64::NEG_INFINITY), 0.0);
        assert_eq!(lane::exp(1000.0), f64::INFINITY);
        assert!(lane::exp(f64::NAN).is_nan());
    }

    #[test]
    fn ln_within_two_ulps_including_subnormals() {
        check("ln", lane::ln, f64::ln, &log_spread(), 2);
        check("ln", lane::ln, f64::ln, &samples(0.5, 2.0, 10_000), 2);
        assert_eq!(lane::ln(0.0), f64::NEG_INFINITY);
        assert_eq!(lane::ln(f64::INFINITY), f64::INFINITY);
        assert!(lane::ln(-1.0).is_nan() && lane::ln(f64::NAN).is_nan());
    }

    #[test]
    fn ln_1p_and_exp_m1_keep_small_arguments() {
        let mut xs = samples(-0.999, 50.0, 10_000);
        xs.extend(samples(-1e-8, 1e-8, 2_000));
        xs.extend([1e-300, -1e-300, 1e-17, 1e300, 0.0]);
        check("ln_1p", lane::ln_1p, f64::ln_1p, &xs, 4);
        assert_eq!(lane::ln_1p(-1.0), f64::NEG_INFINITY);
        assert_eq!(lane::ln_1p(f64::INFINITY), f64::INFINITY);
        let mut ys = samples(-40.0, 40.0, 10_000);
        ys.extend(samples(-1e-8, 1e-8, 2_000));
        ys.extend(samples(-1.0, 1.0, 2_000));
        ys.extend(samples(-700.0, 709.7, 2_000));
        ys.extend([1e-300, -1e-300, 700.0, 709.7, -38.5, -800.0]);
        check("exp_m1", lane::exp_m1, f64::exp_m1, &ys, 4);
        assert!(lane::exp_m1(-0.0).is_sign_negative() && lane::exp_m1(f64::NAN).is_nan());
        assert_eq!(lane::exp_m1(800.0), f64::INFINITY);
    }

    #[test]
    fn tanh_sigmoid_softplus_match_the_scalar_forms() {
        let mut xs = samples(-40.0, 40.0, 10_000);
        xs.extend(samples(-1e-6, 1e-6, 1_000));
        xs.extend([0.0, 800.0, -800.0, 1e-300]);
        check("tanh", lane::tanh, f64::tanh, &xs, 4);
        check("sigmoid", lane::sigmoid, crate::math::sigmoid, &xs, 4);
        check("softplus", lane::softplus, crate::math::softplus, &xs, 4);
        assert!(lane::softplus(f64::NAN).is_nan() && lane::tanh(f64::NAN).is_nan());
        assert_eq!(lane::softplus(f64::INFINITY), f64::INFINITY);
    }

    #[test]
    fn powi_matches_repeated_multiplication() {
        for n in -5..=7 {
            for x in [0.5_f64, -1.25, 3.0, 1e-3] {
                let want = x.powi(n);
                assert!(ulps(lane::powi(x, n), want) <= 2, "{x}^{n}");
            }
        }
        assert_eq!(lane::powi(2.0, 0), 1.0);
    }

    #[test]
    fn lanes_compute_each_lane_on_its_own() {
        let a = Lanes([1.0, -2.0, 0.5, 800.0, -0.25, 3.0, -800.0, 0.0]);
        let b = F64x8::splat(2.0);
        assert_eq!((a + b).0, [3.0, 0.0, 2.5, 802.0, 1.75, 5.0, -798.0, 2.0]);
        assert_eq!(
            (2.0 * a - b).0,
            [0.0, -6.0, -1.0, 1598.0, -2.5, 4.0, -1602.0, -2.0]
        );
        assert_eq!(
            (a / 2.0).0,
            [0.5, -1.0, 0.25, 400.0, -0.125, 1.5, -400.0, 0.0]
        );
        assert_eq!((-a).0, [-1.0, 2.0, -0.5, -800.0, 0.25, -3.0, 800.0, -0.0]);
        let s = a.sigmoid();
        for (l, &x) in s.0.iter().zip(&a.0) {
            assert_eq!(*l, lane::sigmoid(x));
        }
        let mut acc = F64x8::default();
        acc += a;
        acc += 1.0;
        assert_eq!(acc.0, [2.0, -1.0, 1.5, 801.0, 0.75, 4.0, -799.0, 1.0]);
        assert_eq!(
            acc.sum(),
            ((2.0 + -1.0) + (1.5 + 801.0)) + ((0.75 + 4.0) + (-799.0 + 1.0))
        );
        assert_eq!(a.powf(2.0).0[2], 0.25);
    }

    /// The compact functions (the straight-line kernels') give the same
    /// bits as the written-out ones, in eight lanes, four and one.
    #[test]
    fn compact_functions_have_the_bits_of_the_written_out_ones() {
        fn check<const W: usize>(xs: &[f64]) {
            type F<const W: usize> = fn(Lanes<W>) -> Lanes<W>;
            // Every function of the list, written out and compact.
            macro_rules! both_forms {
                ($($(#[$doc:meta])* $name:ident => $lanes:ident;)*) => {
                    [$((
                        stringify!($name),
                        (|x| x.$name()) as F<W>,
                        (|x| x.compact().$name()) as F<W>,
                    )),*]
                };
            }
            let pairs = polynomial_functions!(both_forms);
            for chunk in xs.chunks_exact(W) {
                let x = Lanes::<W>::load(chunk);
                for (name, written_out, compact) in &pairs {
                    let (a, b) = (written_out(x).0, compact(x).0);
                    let same = a.iter().zip(&b).all(|(a, b)| a.to_bits() == b.to_bits());
                    assert!(same, "{name}({chunk:?}): {a:?} written out, {b:?} compact");
                }
            }
        }
        let mut xs = samples(-40.0, 40.0, 4_000);
        xs.extend(samples(-1e-3, 1e-3, 800));
        xs.extend(samples(1e-300, 1e300, 800));
        xs.extend([0.0, -0.0, 1.0, -1.0, 709.0, -745.0, f64::INFINITY, f64::NAN]);
        check::<8>(&xs);
        check::<4>(&xs);
        check::<1>(&xs);
        // Deref: the functions without a polynomial are the lanes' own.
        let x = F64x4::splat(-2.25);
        assert_eq!(x.compact().abs(), x.abs());
    }
}
