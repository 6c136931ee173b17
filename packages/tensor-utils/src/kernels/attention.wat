;; kvkit's attention kernel: scores, causal softmax and the weighted sum of values for every
;; (batch, head, query row) in one call, reading keys and values where they already are.
;; Assembled by scripts/build-kernels.mjs into attention-wasm.ts (checked by kernels.test.ts).
;;
;; All addresses and strides are in bytes. Query row (b, i) of head h is at
;;   q + (b*T + i)*qRow + h*hs*4,
;; key/value row p of key/value head j = h / group in batch b is at
;;   k + b*kvBatch + j*kvHead + p*kvRow   (likewise v),
;; and the output row (b, i) of head h goes to out + (b*T + i)*outRow + h*hs*4.
;; The query at absolute position startPos + i sees key rows 0 .. min(startPos + i + 1, tKeys) - 1.
(module
  (memory (export "memory") 1)

  ;; e^x for x <= 0 (softmax arguments after the row maximum is subtracted). Cephes' expf:
  ;; x = n*ln2 + r with |r| <= ln2/2, a degree-6 polynomial for e^r, then the exponent bits.
  ;; Below -87 the result underflows float32: 0.
  (func $exp_neg (param $x f32) (result f32)
    (local $n f32) (local $r f32) (local $p f32)
    (if (f32.lt (local.get $x) (f32.const -87.0)) (then (return (f32.const 0))))
    (local.set $n (f32.nearest (f32.mul (local.get $x) (f32.const 1.44269504088896341))))
    (local.set $r (f32.sub (local.get $x) (f32.mul (local.get $n) (f32.const 0.693359375))))
    (local.set $r (f32.sub (local.get $r) (f32.mul (local.get $n) (f32.const -2.12194440e-4))))
    (local.set $p (f32.const 1.9875691500e-4))
    (local.set $p (f32.add (f32.mul (local.get $p) (local.get $r)) (f32.const 1.3981999507e-3)))
    (local.set $p (f32.add (f32.mul (local.get $p) (local.get $r)) (f32.const 8.3334519073e-3)))
    (local.set $p (f32.add (f32.mul (local.get $p) (local.get $r)) (f32.const 4.1665795894e-2)))
    (local.set $p (f32.add (f32.mul (local.get $p) (local.get $r)) (f32.const 1.6666665459e-1)))
    (local.set $p (f32.add (f32.mul (local.get $p) (local.get $r)) (f32.const 5.0000001201e-1)))
    (local.set $p
      (f32.add
        (f32.add (f32.mul (f32.mul (local.get $p) (local.get $r)) (local.get $r)) (local.get $r))
        (f32.const 1)))
    (f32.mul (local.get $p)
      (f32.reinterpret_i32
        (i32.shl (i32.add (i32.trunc_f32_s (local.get $n)) (i32.const 127)) (i32.const 23)))))

  ;; Four lanes of $exp_neg at once (same polynomial); lanes below -87 give e^-87 ~ 1.6e-38
  ;; instead of 0, which no softmax sum (>= 1) can notice.
  (func $exp_neg4 (param $x v128) (result v128)
    (local $n v128) (local $r v128) (local $p v128)
    (local.set $x (f32x4.max (local.get $x) (f32x4.splat (f32.const -87.0))))
    (local.set $n (f32x4.nearest (f32x4.mul (local.get $x) (f32x4.splat (f32.const 1.44269504088896341)))))
    (local.set $r (f32x4.sub (local.get $x) (f32x4.mul (local.get $n) (f32x4.splat (f32.const 0.693359375)))))
    (local.set $r (f32x4.sub (local.get $r) (f32x4.mul (local.get $n) (f32x4.splat (f32.const -2.12194440e-4)))))
    (local.set $p (f32x4.splat (f32.const 1.9875691500e-4)))
    (local.set $p (f32x4.add (f32x4.mul (local.get $p) (local.get $r)) (f32x4.splat (f32.const 1.3981999507e-3))))
    (local.set $p (f32x4.add (f32x4.mul (local.get $p) (local.get $r)) (f32x4.splat (f32.const 8.3334519073e-3))))
    (local.set $p (f32x4.add (f32x4.mul (local.get $p) (local.get $r)) (f32x4.splat (f32.const 4.1665795894e-2))))
    (local.set $p (f32x4.add (f32x4.mul (local.get $p) (local.get $r)) (f32x4.splat (f32.const 1.6666665459e-1))))
    (local.set $p (f32x4.add (f32x4.mul (local.get $p) (local.get $r)) (f32x4.splat (f32.const 5.0000001201e-1))))
    (local.set $p
      (f32x4.add
        (f32x4.add (f32x4.mul (f32x4.mul (local.get $p) (local.get $r)) (local.get $r)) (local.get $r))
        (f32x4.splat (f32.const 1))))
    (f32x4.mul (local.get $p)
      (i32x4.shl (i32x4.add (i32x4.trunc_sat_f32x4_s (local.get $n)) (i32x4.splat (i32.const 127))) (i32.const 23))))

  ;; Exposed for tests of the exponential alone.
  (func (export "exp_neg") (param $x f32) (result f32) (call $exp_neg (local.get $x)))
  (func (export "exp_neg4") (param $x f32) (result f32)
    (f32x4.extract_lane 0 (call $exp_neg4 (f32x4.splat (local.get $x)))))

  (func (export "attend")
    (param $q i32) (param $qRow i32)
    (param $k i32) (param $v i32) (param $kvBatch i32) (param $kvHead i32) (param $kvRow i32)
    (param $out i32) (param $outRow i32)
    (param $scores i32)
    (param $B i32) (param $T i32) (param $nh i32) (param $group i32) (param $hs i32)
    (param $startPos i32) (param $tKeys i32) (param $scale f32)
    (local $b i32) (local $h i32) (local $i i32) (local $p i32) (local $d i32) (local $n i32)
    (local $hsVec i32) (local $hsBytes i32) (local $row i32)
    (local $kb i32) (local $vb i32) (local $qr i32) (local $or i32) (local $kr i32) (local $vr i32)
    (local $sp i32) (local $at i32)
    (local $acc v128) (local $wv v128) (local $a1 v128) (local $a2 v128) (local $a3 v128) (local $qv v128)
    (local $k1 i32) (local $k2 i32) (local $k3 i32) (local $n4 i32) (local $mv v128) (local $sv v128)
    (local $w1 v128) (local $w2 v128) (local $w3 v128) (local $vec i32)
    (local $s f32) (local $m f32) (local $sum f32) (local $w f32) (local $inv f32)
    (local.set $hsBytes (i32.shl (local.get $hs) (i32.const 2)))
    (local.set $hsVec (i32.and (local.get $hs) (i32.const -4))) ;; floats handled 4 at a time
    ;; Keys go 4 at a time when a row is whole vectors (hs % 4 == 0); the rest one at a time.
    (local.set $vec (i32.eq (local.get $hsVec) (local.get $hs)))
    (local.set $b (i32.const 0))
    (block $bDone (loop $bLoop
      (br_if $bDone (i32.ge_u (local.get $b) (local.get $B)))
      (local.set $h (i32.const 0))
      (block $hDone (loop $hLoop
        (br_if $hDone (i32.ge_u (local.get $h) (local.get $nh)))
        (local.set $kb
          (i32.add (i32.add (local.get $k) (i32.mul (local.get $b) (local.get $kvBatch)))
            (i32.mul (i32.div_u (local.get $h) (local.get $group)) (local.get $kvHead))))
        (local.set $vb
          (i32.add (i32.add (local.get $v) (i32.mul (local.get $b) (local.get $kvBatch)))
            (i32.mul (i32.div_u (local.get $h) (local.get $group)) (local.get $kvHead))))
        (local.set $i (i32.const 0))
        (block $iDone (loop $iLoop
          (br_if $iDone (i32.ge_u (local.get $i) (local.get $T)))
          (local.set $row (i32.add (i32.mul (local.get $b) (local.get $T)) (local.get $i)))
          (local.set $qr
            (i32.add (i32.add (local.get $q) (i32.mul (local.get $row) (local.get $qRow)))
              (i32.mul (local.get $h) (local.get $hsBytes))))
          (local.set $or
            (i32.add (i32.add (local.get $out) (i32.mul (local.get $row) (local.get $outRow)))
              (i32.mul (local.get $h) (local.get $hsBytes))))
          (local.set $n (i32.add (i32.add (local.get $startPos) (local.get $i)) (i32.const 1)))
          (if (i32.gt_u (local.get $n) (local.get $tKeys)) (then (local.set $n (local.get $tKeys))))

          ;; Pass 1: s_p = (q . k_p) * scale, and their maximum.
          (local.set $kr (local.get $kb))
          (local.set $sp (local.get $scores))
          (local.set $p (i32.const 0))
          (local.set $n4 (select (i32.and (local.get $n) (i32.const -4)) (i32.const 0) (local.get $vec)))
          (local.set $mv (f32x4.splat (f32.const -inf)))
          (block $q1Done (loop $q1Loop
            (br_if $q1Done (i32.ge_u (local.get $p) (local.get $n4)))
            (local.set $k1 (i32.add (local.get $kr) (local.get $kvRow)))
            (local.set $k2 (i32.add (local.get $k1) (local.get $kvRow)))
            (local.set $k3 (i32.add (local.get $k2) (local.get $kvRow)))
            (local.set $acc (v128.const f32x4 0 0 0 0))
            (local.set $a1 (v128.const f32x4 0 0 0 0))
            (local.set $a2 (v128.const f32x4 0 0 0 0))
            (local.set $a3 (v128.const f32x4 0 0 0 0))
            (local.set $at (i32.const 0))
            (block $dqDone (loop $dqLoop
              (br_if $dqDone (i32.ge_u (local.get $at) (local.get $hsBytes)))
              (local.set $qv (v128.load (i32.add (local.get $qr) (local.get $at))))
              (local.set $acc (f32x4.add (local.get $acc) (f32x4.mul (local.get $qv) (v128.load (i32.add (local.get $kr) (local.get $at))))))
              (local.set $a1 (f32x4.add (local.get $a1) (f32x4.mul (local.get $qv) (v128.load (i32.add (local.get $k1) (local.get $at))))))
              (local.set $a2 (f32x4.add (local.get $a2) (f32x4.mul (local.get $qv) (v128.load (i32.add (local.get $k2) (local.get $at))))))
              (local.set $a3 (f32x4.add (local.get $a3) (f32x4.mul (local.get $qv) (v128.load (i32.add (local.get $k3) (local.get $at))))))
              (local.set $at (i32.add (local.get $at) (i32.const 16)))
              (br $dqLoop)))
            ;; Transpose-and-add the four accumulators into [s_p, s_p+1, s_p+2, s_p+3].
            (local.set $acc
              (f32x4.add
                (i8x16.shuffle 0 1 2 3 16 17 18 19 4 5 6 7 20 21 22 23 (local.get $acc) (local.get $a1))
                (i8x16.shuffle 8 9 10 11 24 25 26 27 12 13 14 15 28 29 30 31 (local.get $acc) (local.get $a1))))
            (local.set $a2
              (f32x4.add
                (i8x16.shuffle 0 1 2 3 16 17 18 19 4 5 6 7 20 21 22 23 (local.get $a2) (local.get $a3))
                (i8x16.shuffle 8 9 10 11 24 25 26 27 12 13 14 15 28 29 30 31 (local.get $a2) (local.get $a3))))
            (local.set $sv
              (f32x4.mul (f32x4.splat (local.get $scale))
                (f32x4.add
                  (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23 (local.get $acc) (local.get $a2))
                  (i8x16.shuffle 8 9 10 11 12 13 14 15 24 25 26 27 28 29 30 31 (local.get $acc) (local.get $a2)))))
            (v128.store (local.get $sp) (local.get $sv))
            (local.set $mv (f32x4.max (local.get $mv) (local.get $sv)))
            (local.set $kr (i32.add (local.get $k3) (local.get $kvRow)))
            (local.set $sp (i32.add (local.get $sp) (i32.const 16)))
            (local.set $p (i32.add (local.get $p) (i32.const 4)))
            (br $q1Loop)))
          (local.set $m
            (f32.max
              (f32.max (f32x4.extract_lane 0 (local.get $mv)) (f32x4.extract_lane 1 (local.get $mv)))
              (f32.max (f32x4.extract_lane 2 (local.get $mv)) (f32x4.extract_lane 3 (local.get $mv)))))
          (block $p1Done (loop $p1Loop
            (br_if $p1Done (i32.ge_u (local.get $p) (local.get $n)))
            (local.set $acc (v128.const f32x4 0 0 0 0))
            (local.set $d (i32.const 0))
            (block $dDone (loop $dLoop
              (br_if $dDone (i32.ge_u (local.get $d) (local.get $hsVec)))
              (local.set $at (i32.shl (local.get $d) (i32.const 2)))
              (local.set $acc
                (f32x4.add (local.get $acc)
                  (f32x4.mul
                    (v128.load (i32.add (local.get $qr) (local.get $at)))
                    (v128.load (i32.add (local.get $kr) (local.get $at))))))
              (local.set $d (i32.add (local.get $d) (i32.const 4)))
              (br $dLoop)))
            (local.set $s
              (f32.add
                (f32.add (f32x4.extract_lane 0 (local.get $acc)) (f32x4.extract_lane 1 (local.get $acc)))
                (f32.add (f32x4.extract_lane 2 (local.get $acc)) (f32x4.extract_lane 3 (local.get $acc)))))
            (block $tDone (loop $tLoop
              (br_if $tDone (i32.ge_u (local.get $d) (local.get $hs)))
              (local.set $at (i32.shl (local.get $d) (i32.const 2)))
              (local.set $s
                (f32.add (local.get $s)
                  (f32.mul
                    (f32.load (i32.add (local.get $qr) (local.get $at)))
                    (f32.load (i32.add (local.get $kr) (local.get $at))))))
              (local.set $d (i32.add (local.get $d) (i32.const 1)))
              (br $tLoop)))
            (local.set $s (f32.mul (local.get $s) (local.get $scale)))
            (f32.store (local.get $sp) (local.get $s))
            (local.set $m (f32.max (local.get $m) (local.get $s)))
            (local.set $kr (i32.add (local.get $kr) (local.get $kvRow)))
            (local.set $sp (i32.add (local.get $sp) (i32.const 4)))
            (local.set $p (i32.add (local.get $p) (i32.const 1)))
            (br $p1Loop)))

          ;; Pass 2: w_p = e^(s_p - max), and their sum.
          (local.set $sum (f32.const 0))
          (local.set $sp (local.get $scores))
          (local.set $p (i32.const 0))
          (local.set $n4 (i32.and (local.get $n) (i32.const -4)))
          (local.set $mv (f32x4.splat (local.get $m)))
          (local.set $sv (v128.const f32x4 0 0 0 0))
          (block $q2Done (loop $q2Loop
            (br_if $q2Done (i32.ge_u (local.get $p) (local.get $n4)))
            (local.set $wv (call $exp_neg4 (f32x4.sub (v128.load (local.get $sp)) (local.get $mv))))
            (v128.store (local.get $sp) (local.get $wv))
            (local.set $sv (f32x4.add (local.get $sv) (local.get $wv)))
            (local.set $sp (i32.add (local.get $sp) (i32.const 16)))
            (local.set $p (i32.add (local.get $p) (i32.const 4)))
            (br $q2Loop)))
          (local.set $sum
            (f32.add
              (f32.add (f32x4.extract_lane 0 (local.get $sv)) (f32x4.extract_lane 1 (local.get $sv)))
              (f32.add (f32x4.extract_lane 2 (local.get $sv)) (f32x4.extract_lane 3 (local.get $sv)))))
          (block $p2Done (loop $p2Loop
            (br_if $p2Done (i32.ge_u (local.get $p) (local.get $n)))
            (local.set $w (call $exp_neg (f32.sub (f32.load (local.get $sp)) (local.get $m))))
            (f32.store (local.get $sp) (local.get $w))
            (local.set $sum (f32.add (local.get $sum) (local.get $w)))
            (local.set $sp (i32.add (local.get $sp) (i32.const 4)))
            (local.set $p (i32.add (local.get $p) (i32.const 1)))
            (br $p2Loop)))

          ;; Pass 3: out = (sum_p w_p v_p) / sum.
          (local.set $d (i32.const 0))
          (block $zDone (loop $zLoop
            (br_if $zDone (i32.ge_u (local.get $d) (local.get $hs)))
            (f32.store (i32.add (local.get $or) (i32.shl (local.get $d) (i32.const 2))) (f32.const 0))
            (local.set $d (i32.add (local.get $d) (i32.const 1)))
            (br $zLoop)))
          (local.set $vr (local.get $vb))
          (local.set $sp (local.get $scores))
          (local.set $p (i32.const 0))
          (local.set $n4 (select (i32.and (local.get $n) (i32.const -4)) (i32.const 0) (local.get $vec)))
          (block $q3Done (loop $q3Loop
            (br_if $q3Done (i32.ge_u (local.get $p) (local.get $n4)))
            (local.set $k1 (i32.add (local.get $vr) (local.get $kvRow)))
            (local.set $k2 (i32.add (local.get $k1) (local.get $kvRow)))
            (local.set $k3 (i32.add (local.get $k2) (local.get $kvRow)))
            (local.set $wv (f32x4.splat (f32.load (local.get $sp))))
            (local.set $w1 (f32x4.splat (f32.load offset=4 (local.get $sp))))
            (local.set $w2 (f32x4.splat (f32.load offset=8 (local.get $sp))))
            (local.set $w3 (f32x4.splat (f32.load offset=12 (local.get $sp))))
            (local.set $at (i32.const 0))
            (block $eqDone (loop $eqLoop
              (br_if $eqDone (i32.ge_u (local.get $at) (local.get $hsBytes)))
              (v128.store (i32.add (local.get $or) (local.get $at))
                (f32x4.add
                  (v128.load (i32.add (local.get $or) (local.get $at)))
                  (f32x4.add
                    (f32x4.add
                      (f32x4.mul (local.get $wv) (v128.load (i32.add (local.get $vr) (local.get $at))))
                      (f32x4.mul (local.get $w1) (v128.load (i32.add (local.get $k1) (local.get $at)))))
                    (f32x4.add
                      (f32x4.mul (local.get $w2) (v128.load (i32.add (local.get $k2) (local.get $at))))
                      (f32x4.mul (local.get $w3) (v128.load (i32.add (local.get $k3) (local.get $at))))))))
              (local.set $at (i32.add (local.get $at) (i32.const 16)))
              (br $eqLoop)))
            (local.set $vr (i32.add (local.get $k3) (local.get $kvRow)))
            (local.set $sp (i32.add (local.get $sp) (i32.const 16)))
            (local.set $p (i32.add (local.get $p) (i32.const 4)))
            (br $q3Loop)))
          (block $p3Done (loop $p3Loop
            (br_if $p3Done (i32.ge_u (local.get $p) (local.get $n)))
            (local.set $w (f32.load (local.get $sp)))
            (local.set $wv (f32x4.splat (local.get $w)))
            (local.set $d (i32.const 0))
            (block $eDone (loop $eLoop
              (br_if $eDone (i32.ge_u (local.get $d) (local.get $hsVec)))
              (local.set $at (i32.shl (local.get $d) (i32.const 2)))
              (v128.store (i32.add (local.get $or) (local.get $at))
                (f32x4.add
                  (v128.load (i32.add (local.get $or) (local.get $at)))
                  (f32x4.mul (local.get $wv) (v128.load (i32.add (local.get $vr) (local.get $at))))))
              (local.set $d (i32.add (local.get $d) (i32.const 4)))
              (br $eLoop)))
            (block $fDone (loop $fLoop
              (br_if $fDone (i32.ge_u (local.get $d) (local.get $hs)))
              (local.set $at (i32.shl (local.get $d) (i32.const 2)))
              (f32.store (i32.add (local.get $or) (local.get $at))
                (f32.add
                  (f32.load (i32.add (local.get $or) (local.get $at)))
                  (f32.mul (local.get $w) (f32.load (i32.add (local.get $vr) (local.get $at))))))
              (local.set $d (i32.add (local.get $d) (i32.const 1)))
              (br $fLoop)))
            (local.set $vr (i32.add (local.get $vr) (local.get $kvRow)))
            (local.set $sp (i32.add (local.get $sp) (i32.const 4)))
            (local.set $p (i32.add (local.get $p) (i32.const 1)))
            (br $p3Loop)))
          (local.set $inv (f32.div (f32.const 1) (local.get $sum)))
          (local.set $d (i32.const 0))
          (block $gDone (loop $gLoop
            (br_if $gDone (i32.ge_u (local.get $d) (local.get $hs)))
            (local.set $at (i32.add (local.get $or) (i32.shl (local.get $d) (i32.const 2))))
            (f32.store (local.get $at) (f32.mul (f32.load (local.get $at)) (local.get $inv)))
            (local.set $d (i32.add (local.get $d) (i32.const 1)))
            (br $gLoop)))

          (local.set $i (i32.add (local.get $i) (i32.const 1)))
          (br $iLoop)))
        (local.set $h (i32.add (local.get $h) (i32.const 1)))
        (br $hLoop)))
      (local.set $b (i32.add (local.get $b) (i32.const 1)))
      (br $bLoop)))))
