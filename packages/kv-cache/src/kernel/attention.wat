;; kvkit's attention kernel: scores, masked softmax and the weighted sum of values for every
;; (batch, head, query row) in one call, reading keys and values where the cache keeps them.
;; Assembled by scripts/build-kernels.mjs into attention-wasm.ts (checked by kernel.test.ts).
;; attend.ts is the only caller; docs/decisions/kv-cache-contract.md explains the layout.
;;
;; All addresses and strides are in bytes.
;; - Query row (b, i) of head h is at q + b*qBatch + i*qRow + h*hs*4; its absolute position is
;;   qStart[b] + i (qStart: i32[B]). The output row goes to out + b*outBatch + i*outRow + h*hs*4.
;; - A batch row's keys are a list of runs (runs + b*runBatch, runCounts[b] entries of 16 bytes):
;;   [offset, count, firstPos, sink]: `count` consecutive slots holding positions
;;   firstPos .. firstPos+count-1, the first of them, for key/value head j, at
;;   k + offset + j*kvHead (values: v + offset + j*kvHead), the next ones kvRow apart.
;;   Query head h reads key/value head h / group.
;; - Visibility: the query at position P sees a key at position p when p <= P and, unless its
;;   run is a sink run, P - p < window. Only visible keys are read.
(module
  ;; The memory is the caller's (KernelHeap), so it can be sized, limited and shared.
  (import "env" "memory" (memory 1))

  ;; The first visible position of the run $clip was last called on.
  (global $lo (mut i32) (i32.const 0))

  ;; e^x for x <= 0 (softmax arguments after the row maximum is subtracted). Cephes' expf:
  ;; x = n*ln2 + r with |r| <= ln2/2, a degree-6 polynomial for e^r, then the exponent bits.
  ;; Below -87 the result underflows float32: 0. NaN gives NaN (the saturating conversion
  ;; never traps).
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
        (i32.shl (i32.add (i32.trunc_sat_f32_s (local.get $n)) (i32.const 127)) (i32.const 23)))))

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

  ;; 1 when the n floats at p are all finite, 0 when one is NaN or +-Infinity (x - x is 0 for
  ;; finite x and NaN otherwise; a NaN survives every later addition).
  (func (export "all_finite") (param $p i32) (param $n i32) (result i32)
    (local $end i32) (local $acc v128) (local $s f32) (local $x f32)
    (local.set $end (i32.add (local.get $p) (i32.shl (i32.and (local.get $n) (i32.const -4)) (i32.const 2))))
    (block $vDone (loop $vLoop
      (br_if $vDone (i32.ge_u (local.get $p) (local.get $end)))
      (local.set $acc
        (f32x4.add (local.get $acc)
          (f32x4.sub (v128.load (local.get $p)) (v128.load (local.get $p)))))
      (local.set $p (i32.add (local.get $p) (i32.const 16)))
      (br $vLoop)))
    (local.set $s
      (f32.add
        (f32.add (f32x4.extract_lane 0 (local.get $acc)) (f32x4.extract_lane 1 (local.get $acc)))
        (f32.add (f32x4.extract_lane 2 (local.get $acc)) (f32x4.extract_lane 3 (local.get $acc)))))
    (local.set $end (i32.add (local.get $end) (i32.shl (i32.and (local.get $n) (i32.const 3)) (i32.const 2))))
    (block $sDone (loop $sLoop
      (br_if $sDone (i32.ge_u (local.get $p) (local.get $end)))
      (local.set $x (f32.load (local.get $p)))
      (local.set $s (f32.add (local.get $s) (f32.sub (local.get $x) (local.get $x))))
      (local.set $p (i32.add (local.get $p) (i32.const 4)))
      (br $sLoop)))
    (f32.eq (local.get $s) (local.get $s)))

  ;; Copies a (rows x heads) grid of `bytes`-byte rows: row i of head j from
  ;; src + i*srcRow + j*srcHead to dst + i*dstRow + j*dstHead. How a cache stores new key/value
  ;; rows taken from a projection's output in one call per batch row.
  (func (export "copy_rows")
    (param $src i32) (param $srcRow i32) (param $srcHead i32)
    (param $dst i32) (param $dstRow i32) (param $dstHead i32)
    (param $rows i32) (param $heads i32) (param $bytes i32)
    (local $i i32) (local $j i32) (local $s i32) (local $d i32)
    (block $jDone (loop $jLoop
      (br_if $jDone (i32.ge_u (local.get $j) (local.get $heads)))
      (local.set $s (i32.add (local.get $src) (i32.mul (local.get $j) (local.get $srcHead))))
      (local.set $d (i32.add (local.get $dst) (i32.mul (local.get $j) (local.get $dstHead))))
      (local.set $i (i32.const 0))
      (block $iDone (loop $iLoop
        (br_if $iDone (i32.ge_u (local.get $i) (local.get $rows)))
        (memory.copy (local.get $d) (local.get $s) (local.get $bytes))
        (local.set $s (i32.add (local.get $s) (local.get $srcRow)))
        (local.set $d (i32.add (local.get $d) (local.get $dstRow)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $iLoop)))
      (local.set $j (i32.add (local.get $j) (i32.const 1)))
      (br $jLoop))))

  ;; How many positions of the run [fp, fp + cnt) the query at position P sees; the first of
  ;; them goes to $lo. A sink run ignores the window.
  (func $clip (param $fp i32) (param $cnt i32) (param $sink i32) (param $P i32) (param $window i32)
    (result i32)
    (local $lo i32) (local $hi i32) (local $from i32)
    (local.set $lo (local.get $fp))
    (local.set $hi (i32.sub (i32.add (local.get $fp) (local.get $cnt)) (i32.const 1)))
    (if (i32.gt_s (local.get $hi) (local.get $P)) (then (local.set $hi (local.get $P))))
    (if (i32.eqz (local.get $sink))
      (then
        ;; P - window + 1 cannot overflow: P >= 0 and 1 <= window <= 2^31 - 1.
        (local.set $from (i32.add (i32.sub (local.get $P) (local.get $window)) (i32.const 1)))
        (if (i32.gt_s (local.get $from) (local.get $lo)) (then (local.set $lo (local.get $from))))))
    (if (i32.gt_s (local.get $lo) (local.get $hi)) (then (return (i32.const 0))))
    (global.set $lo (local.get $lo))
    (i32.add (i32.sub (local.get $hi) (local.get $lo)) (i32.const 1)))

  ;; Scores s_p = (q . k_p) * scale of n consecutive keys (kr, kr + kvRow, ...) into sp[0..n),
  ;; four keys at a time when a row is whole vectors; returns max(m, every s_p).
  (func $score_run
    (param $qr i32) (param $kr i32) (param $n i32) (param $kvRow i32) (param $hsBytes i32)
    (param $hsVecBytes i32) (param $vec i32) (param $sp i32) (param $scale f32) (param $m f32)
    (result f32)
    (local $p i32) (local $n4 i32) (local $at i32) (local $k1 i32) (local $k2 i32) (local $k3 i32)
    (local $acc v128) (local $a1 v128) (local $a2 v128) (local $a3 v128) (local $qv v128)
    (local $sv v128) (local $mv v128) (local $s f32)
    (local.set $n4 (select (i32.and (local.get $n) (i32.const -4)) (i32.const 0) (local.get $vec)))
    (local.set $mv (f32x4.splat (local.get $m)))
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
      (local.set $at (i32.const 0))
      (block $dDone (loop $dLoop
        (br_if $dDone (i32.ge_u (local.get $at) (local.get $hsVecBytes)))
        (local.set $acc
          (f32x4.add (local.get $acc)
            (f32x4.mul
              (v128.load (i32.add (local.get $qr) (local.get $at)))
              (v128.load (i32.add (local.get $kr) (local.get $at))))))
        (local.set $at (i32.add (local.get $at) (i32.const 16)))
        (br $dLoop)))
      (local.set $s
        (f32.add
          (f32.add (f32x4.extract_lane 0 (local.get $acc)) (f32x4.extract_lane 1 (local.get $acc)))
          (f32.add (f32x4.extract_lane 2 (local.get $acc)) (f32x4.extract_lane 3 (local.get $acc)))))
      (block $tDone (loop $tLoop
        (br_if $tDone (i32.ge_u (local.get $at) (local.get $hsBytes)))
        (local.set $s
          (f32.add (local.get $s)
            (f32.mul
              (f32.load (i32.add (local.get $qr) (local.get $at)))
              (f32.load (i32.add (local.get $kr) (local.get $at))))))
        (local.set $at (i32.add (local.get $at) (i32.const 4)))
        (br $tLoop)))
      (local.set $s (f32.mul (local.get $s) (local.get $scale)))
      (f32.store (local.get $sp) (local.get $s))
      (local.set $m (f32.max (local.get $m) (local.get $s)))
      (local.set $kr (i32.add (local.get $kr) (local.get $kvRow)))
      (local.set $sp (i32.add (local.get $sp) (i32.const 4)))
      (local.set $p (i32.add (local.get $p) (i32.const 1)))
      (br $p1Loop)))
    (local.get $m))

  ;; or += sum_p w_p v_p over n consecutive value rows (vr, vr + kvRow, ...), w_p = sp[p].
  (func $value_run
    (param $or i32) (param $vr i32) (param $n i32) (param $kvRow i32) (param $hsBytes i32)
    (param $hsVecBytes i32) (param $vec i32) (param $sp i32)
    (local $p i32) (local $n4 i32) (local $at i32) (local $k1 i32) (local $k2 i32) (local $k3 i32)
    (local $wv v128) (local $w1 v128) (local $w2 v128) (local $w3 v128) (local $w f32)
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
      (local.set $at (i32.const 0))
      (block $eDone (loop $eLoop
        (br_if $eDone (i32.ge_u (local.get $at) (local.get $hsVecBytes)))
        (v128.store (i32.add (local.get $or) (local.get $at))
          (f32x4.add
            (v128.load (i32.add (local.get $or) (local.get $at)))
            (f32x4.mul (local.get $wv) (v128.load (i32.add (local.get $vr) (local.get $at))))))
        (local.set $at (i32.add (local.get $at) (i32.const 16)))
        (br $eLoop)))
      (block $fDone (loop $fLoop
        (br_if $fDone (i32.ge_u (local.get $at) (local.get $hsBytes)))
        (f32.store (i32.add (local.get $or) (local.get $at))
          (f32.add
            (f32.load (i32.add (local.get $or) (local.get $at)))
            (f32.mul (local.get $w) (f32.load (i32.add (local.get $vr) (local.get $at))))))
        (local.set $at (i32.add (local.get $at) (i32.const 4)))
        (br $fLoop)))
      (local.set $vr (i32.add (local.get $vr) (local.get $kvRow)))
      (local.set $sp (i32.add (local.get $sp) (i32.const 4)))
      (local.set $p (i32.add (local.get $p) (i32.const 1)))
      (br $p3Loop))))

  (func (export "attend")
    (param $q i32) (param $qBatch i32) (param $qRow i32)
    (param $out i32) (param $outBatch i32) (param $outRow i32)
    (param $k i32) (param $v i32) (param $kvHead i32) (param $kvRow i32)
    (param $runs i32) (param $runBatch i32) (param $runCounts i32) (param $qStart i32)
    (param $B i32) (param $T i32) (param $nh i32) (param $group i32) (param $hs i32)
    (param $window i32) (param $scale f32) (param $scores i32)
    (local $b i32) (local $h i32) (local $i i32) (local $r i32) (local $p i32)
    (local $hsBytes i32) (local $hsVecBytes i32) (local $vec i32)
    (local $rb i32) (local $nRuns i32) (local $P0 i32) (local $P i32) (local $kvOff i32)
    (local $qr i32) (local $or i32) (local $e i32) (local $cnt i32) (local $n i32) (local $n4 i32)
    (local $sp i32) (local $at i32) (local $slot i32)
    (local $mv v128) (local $sv v128) (local $wv v128)
    (local $m f32) (local $sum f32) (local $w f32) (local $inv f32)
    (local.set $hsBytes (i32.shl (local.get $hs) (i32.const 2)))
    (local.set $hsVecBytes (i32.shl (i32.and (local.get $hs) (i32.const -4)) (i32.const 2)))
    ;; Keys go 4 at a time when a row is whole vectors (hs % 4 == 0); the rest one at a time.
    (local.set $vec (i32.eq (local.get $hsVecBytes) (local.get $hsBytes)))
    (block $bDone (loop $bLoop
      (br_if $bDone (i32.ge_u (local.get $b) (local.get $B)))
      (local.set $rb (i32.add (local.get $runs) (i32.mul (local.get $b) (local.get $runBatch))))
      (local.set $nRuns (i32.load (i32.add (local.get $runCounts) (i32.shl (local.get $b) (i32.const 2)))))
      (local.set $P0 (i32.load (i32.add (local.get $qStart) (i32.shl (local.get $b) (i32.const 2)))))
      (local.set $h (i32.const 0))
      (block $hDone (loop $hLoop
        (br_if $hDone (i32.ge_u (local.get $h) (local.get $nh)))
        (local.set $kvOff (i32.mul (i32.div_u (local.get $h) (local.get $group)) (local.get $kvHead)))
        (local.set $i (i32.const 0))
        (block $iDone (loop $iLoop
          (br_if $iDone (i32.ge_u (local.get $i) (local.get $T)))
          (local.set $P (i32.add (local.get $P0) (local.get $i)))
          (local.set $qr
            (i32.add
              (i32.add (local.get $q) (i32.mul (local.get $b) (local.get $qBatch)))
              (i32.add (i32.mul (local.get $i) (local.get $qRow)) (i32.mul (local.get $h) (local.get $hsBytes)))))
          (local.set $or
            (i32.add
              (i32.add (local.get $out) (i32.mul (local.get $b) (local.get $outBatch)))
              (i32.add (i32.mul (local.get $i) (local.get $outRow)) (i32.mul (local.get $h) (local.get $hsBytes)))))

          ;; Pass 1: the scores of every visible key, run after run, and their maximum.
          (local.set $n (i32.const 0))
          (local.set $m (f32.const -inf))
          (local.set $r (i32.const 0))
          (block $r1Done (loop $r1Loop
            (br_if $r1Done (i32.ge_u (local.get $r) (local.get $nRuns)))
            (local.set $e (i32.add (local.get $rb) (i32.shl (local.get $r) (i32.const 4))))
            (local.set $cnt
              (call $clip (i32.load offset=8 (local.get $e)) (i32.load offset=4 (local.get $e))
                (i32.load offset=12 (local.get $e)) (local.get $P) (local.get $window)))
            (if (local.get $cnt)
              (then
                (local.set $slot
                  (i32.add
                    (i32.add (i32.load (local.get $e)) (local.get $kvOff))
                    (i32.mul (i32.sub (global.get $lo) (i32.load offset=8 (local.get $e))) (local.get $kvRow))))
                (local.set $m
                  (call $score_run (local.get $qr) (i32.add (local.get $k) (local.get $slot))
                    (local.get $cnt) (local.get $kvRow) (local.get $hsBytes) (local.get $hsVecBytes)
                    (local.get $vec) (i32.add (local.get $scores) (i32.shl (local.get $n) (i32.const 2)))
                    (local.get $scale) (local.get $m)))
                (local.set $n (i32.add (local.get $n) (local.get $cnt)))))
            (local.set $r (i32.add (local.get $r) (i32.const 1)))
            (br $r1Loop)))

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

          ;; Pass 3: out = (sum_p w_p v_p) / sum, over the same runs in the same order.
          (local.set $at (i32.const 0))
          (block $zDone (loop $zLoop
            (br_if $zDone (i32.ge_u (local.get $at) (local.get $hsBytes)))
            (f32.store (i32.add (local.get $or) (local.get $at)) (f32.const 0))
            (local.set $at (i32.add (local.get $at) (i32.const 4)))
            (br $zLoop)))
          (local.set $n (i32.const 0))
          (local.set $r (i32.const 0))
          (block $r3Done (loop $r3Loop
            (br_if $r3Done (i32.ge_u (local.get $r) (local.get $nRuns)))
            (local.set $e (i32.add (local.get $rb) (i32.shl (local.get $r) (i32.const 4))))
            (local.set $cnt
              (call $clip (i32.load offset=8 (local.get $e)) (i32.load offset=4 (local.get $e))
                (i32.load offset=12 (local.get $e)) (local.get $P) (local.get $window)))
            (if (local.get $cnt)
              (then
                (local.set $slot
                  (i32.add
                    (i32.add (i32.load (local.get $e)) (local.get $kvOff))
                    (i32.mul (i32.sub (global.get $lo) (i32.load offset=8 (local.get $e))) (local.get $kvRow))))
                (call $value_run (local.get $or) (i32.add (local.get $v) (local.get $slot))
                  (local.get $cnt) (local.get $kvRow) (local.get $hsBytes) (local.get $hsVecBytes)
                  (local.get $vec) (i32.add (local.get $scores) (i32.shl (local.get $n) (i32.const 2))))
                (local.set $n (i32.add (local.get $n) (local.get $cnt)))))
            (local.set $r (i32.add (local.get $r) (i32.const 1)))
            (br $r3Loop)))
          (local.set $inv (f32.div (f32.const 1) (local.get $sum)))
          (local.set $at (i32.const 0))
          (block $gDone (loop $gLoop
            (br_if $gDone (i32.ge_u (local.get $at) (local.get $hsBytes)))
            (f32.store (i32.add (local.get $or) (local.get $at))
              (f32.mul (f32.load (i32.add (local.get $or) (local.get $at))) (local.get $inv)))
            (local.set $at (i32.add (local.get $at) (i32.const 4)))
            (br $gLoop)))

          (local.set $i (i32.add (local.get $i) (i32.const 1)))
          (br $iLoop)))
        (local.set $h (i32.add (local.get $h) (i32.const 1)))
        (br $hLoop)))
      (local.set $b (i32.add (local.get $b) (i32.const 1)))
      (br $bLoop)))))
