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
;; - The run's fourth field is a set of flags: 1 = sink run, 2 = quantized run. A quantized run
;;   [group, count, firstPos, flags] holds positions firstPos .. firstPos+count-1 in quantized
;;   groups: position firstPos + i is row i mod G of group `group + i / G` (G = 2^lg). Its rows
;;   are described by the descriptor at $qd (see "Quantized rows" below); without one ($qd = 0)
;;   no run may carry flag 2.
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

  ;; ---- Quantized rows -----------------------------------------------------------------------
  ;; The descriptor at $qd (int32 fields, byte offsets):
  ;;    0 bits (8 or 4)      4 lg (G = 2^lg)      8 keys       12 kHead      16 kGroup
  ;;   20 values            24 vHead              28 vGroup    32 rowBytes   36 hsPad     40 nvg
  ;;   44 qpad (f32[hsPad] scratch)   48 q16 (i16[hsPad] scratch)   52 vacc (f32[hsPad] scratch)
  ;;   56 af (f32[48*nvg] scratch)    60 wtab (i32[20*nvg] scratch)  64 zb (f32[nvg] scratch)
  ;; A row is hsPad channels (hs padded to 16 for int8, to 32 for int4; padding is zero):
  ;; int8 one byte per channel; int4 16 bytes per 32 channels, channel c + k in the low nibble of
  ;; byte k and channel c + 16 + k in its high nibble.
  ;; Key group g of head j, at keys + j*kHead + g*kGroup: G rows of rowBytes, then hsPad bfloat16
  ;; scales (one per channel), then (int4) hsPad int8 zero points. Element x = s*q (int8) or
  ;; s*(u - z) (int4).
  ;; Value group g of head j, at values + j*vHead + g*vGroup: G rows stored in pairs (rows 2i and
  ;; 2i+1 interleaved byte by byte: 2*rowBytes bytes per pair), then nvg*G bfloat16 scales (scale of
  ;; channel group gc of row t at index gc*G + t; a channel group is G channels), then (int4) nvg*G
  ;; int8 zero points in the same order.
  ;; Keys: the query is scaled per channel (q' = q*s), rounded to int16 against its largest
  ;; magnitude, and each score is an integer dot product (i32x4.dot_i16x8_s) times that scale, so
  ;; no key is expanded to float. Values: integer dot products too, over pairs of rows with int16
  ;; weights (see $value_qblock).

  ;; Copies n bytes (a multiple of 4) from src to dst and zero-fills dst up to total bytes.
  (func $pad_copy (param $dst i32) (param $src i32) (param $n i32) (param $total i32)
    (local $at i32)
    (block $vDone (loop $vLoop
      (br_if $vDone (i32.gt_u (i32.add (local.get $at) (i32.const 16)) (local.get $n)))
      (v128.store (i32.add (local.get $dst) (local.get $at)) (v128.load (i32.add (local.get $src) (local.get $at))))
      (local.set $at (i32.add (local.get $at) (i32.const 16)))
      (br $vLoop)))
    (block $sDone (loop $sLoop
      (br_if $sDone (i32.ge_u (local.get $at) (local.get $n)))
      (f32.store (i32.add (local.get $dst) (local.get $at)) (f32.load (i32.add (local.get $src) (local.get $at))))
      (local.set $at (i32.add (local.get $at) (i32.const 4)))
      (br $sLoop)))
    (block $zDone (loop $zLoop
      (br_if $zDone (i32.ge_u (local.get $at) (local.get $total)))
      (f32.store (i32.add (local.get $dst) (local.get $at)) (f32.const 0))
      (local.set $at (i32.add (local.get $at) (i32.const 4)))
      (br $zLoop))))


  ;; Scores of `cnt` positions of a quantized run, from index i0 of the run, for key/value head j
  ;; (groups from g); into sp[0..cnt); returns max(m, every score).
  (func $score_qrun (param $qd i32) (param $j i32) (param $g i32) (param $i0 i32) (param $cnt i32) (param $sp i32) (param $scale f32) (param $m f32) (result f32)
    (local $lg i32) (local $G i32) (local $r i32) (local $k i32) (local $base i32) (local $stride i32)
    (local.set $lg (i32.load offset=4 (local.get $qd)))
    (local.set $G (i32.shl (i32.const 1) (local.get $lg)))
    (local.set $stride (i32.load offset=16 (local.get $qd)))
    (local.set $g (i32.add (local.get $g) (i32.shr_u (local.get $i0) (local.get $lg))))
    (local.set $r (i32.and (local.get $i0) (i32.sub (local.get $G) (i32.const 1))))
    (local.set $base (i32.add (i32.load offset=8 (local.get $qd)) (i32.mul (local.get $j) (i32.load offset=12 (local.get $qd)))))
    (block $done (loop $next
      (br_if $done (i32.eqz (local.get $cnt)))
      (local.set $k (i32.sub (local.get $G) (local.get $r)))
      (if (i32.gt_u (local.get $k) (local.get $cnt)) (then (local.set $k (local.get $cnt))))
      (local.set $m (call $score_qgroup (local.get $qd) (i32.add (local.get $base) (i32.mul (local.get $g) (local.get $stride))) (local.get $r) (local.get $k) (local.get $sp) (local.get $scale) (local.get $m)))
      (local.set $sp (i32.add (local.get $sp) (i32.shl (local.get $k) (i32.const 2))))
      (local.set $cnt (i32.sub (local.get $cnt) (local.get $k)))
      (local.set $g (i32.add (local.get $g) (i32.const 1)))
      (local.set $r (i32.const 0))
      (br $next)))
    (local.get $m))

  ;; vacc += sum_p w_p v_p over `cnt` positions of a quantized run from index i0, w_p = sp[p].
  (func $value_qrun (param $qd i32) (param $j i32) (param $g i32) (param $i0 i32) (param $cnt i32) (param $sp i32)
    (local $lg i32) (local $G i32) (local $r i32) (local $k i32) (local $base i32) (local $stride i32)
    (local.set $lg (i32.load offset=4 (local.get $qd)))
    (local.set $G (i32.shl (i32.const 1) (local.get $lg)))
    (local.set $stride (i32.load offset=28 (local.get $qd)))
    (local.set $g (i32.add (local.get $g) (i32.shr_u (local.get $i0) (local.get $lg))))
    (local.set $r (i32.and (local.get $i0) (i32.sub (local.get $G) (i32.const 1))))
    (local.set $base (i32.add (i32.load offset=20 (local.get $qd)) (i32.mul (local.get $j) (i32.load offset=24 (local.get $qd)))))
    (block $done (loop $next
      (br_if $done (i32.eqz (local.get $cnt)))
      (local.set $k (i32.sub (local.get $G) (local.get $r)))
      (if (i32.gt_u (local.get $k) (local.get $cnt)) (then (local.set $k (local.get $cnt))))
      (call $value_qgroup (local.get $qd) (i32.add (local.get $base) (i32.mul (local.get $g) (local.get $stride))) (local.get $r) (local.get $k) (local.get $sp))
      (local.set $sp (i32.add (local.get $sp) (i32.shl (local.get $k) (i32.const 2))))
      (local.set $cnt (i32.sub (local.get $cnt) (local.get $k)))
      (local.set $g (i32.add (local.get $g) (i32.const 1)))
      (local.set $r (i32.const 0))
      (br $next))))

  ;; Scores (q . x_p) * scale of n consecutive rows from row r of the key group at kg, into
  ;; sp[0..n); returns max(m, every score). The query row is the padded copy at qpad.
  (func $score_qgroup (param $qd i32) (param $kg i32) (param $r i32) (param $n i32) (param $sp i32)
    (param $scale f32) (param $m f32) (result f32)
    (local $hsPad i32) (local $rowBytes i32) (local $sc i32) (local $zp i32) (local $qpad i32)
    (local $q16 i32) (local $qs i32) (local $c i32) (local $int4 i32) (local $p i32) (local $n4 i32)
    (local $pq i32) (local $ps i32) (local $po i32) (local $pz i32) (local $end i32)
    (local $kr i32) (local $k1 i32) (local $k2 i32) (local $k3 i32)
    (local $x v128) (local $lo v128) (local $amax v128) (local $bias v128) (local $qa v128)
    (local $qb v128) (local $inv v128) (local $w0 v128) (local $w1 v128) (local $w2 v128)
    (local $w3 v128) (local $a0 v128) (local $a1 v128) (local $a2 v128) (local $a3 v128)
    (local $sv v128) (local $mv v128) (local $amaxS f32) (local $fac f32) (local $bs f32)
    (local.set $hsPad (i32.load offset=36 (local.get $qd)))
    (local.set $rowBytes (i32.load offset=32 (local.get $qd)))
    (local.set $qpad (i32.load offset=44 (local.get $qd)))
    (local.set $q16 (i32.load offset=48 (local.get $qd)))
    (local.set $qs (i32.load offset=52 (local.get $qd))) ;; q' (vacc's scratch, unused until pass 3)
    (local.set $int4 (i32.eq (i32.load (local.get $qd)) (i32.const 4)))
    (local.set $sc (i32.add (local.get $kg) (i32.shl (local.get $rowBytes) (i32.load offset=4 (local.get $qd)))))
    (local.set $zp (i32.add (local.get $sc) (i32.shl (local.get $hsPad) (i32.const 1))))
    ;; q' = q * s per channel, its largest magnitude, and (int4) the zero-point term -sum q' z;
    ;; eight channels an iteration, with running pointers.
    (local.set $pq (local.get $qpad))
    (local.set $ps (local.get $sc))
    (local.set $po (local.get $qs))
    (local.set $pz (local.get $zp))
    (local.set $end (i32.add (local.get $qpad) (i32.shl (local.get $hsPad) (i32.const 2))))
    (block $aDone (loop $aLoop
      (br_if $aDone (i32.ge_u (local.get $pq) (local.get $end)))
      (local.set $qa
        (f32x4.mul (v128.load (local.get $pq))
          (i32x4.shl (v128.load16x4_u (local.get $ps)) (i32.const 16))))
      (local.set $qb
        (f32x4.mul (v128.load offset=16 (local.get $pq))
          (i32x4.shl (v128.load16x4_u offset=8 (local.get $ps)) (i32.const 16))))
      (v128.store (local.get $po) (local.get $qa))
      (v128.store offset=16 (local.get $po) (local.get $qb))
      (local.set $amax
        (f32x4.max (local.get $amax) (f32x4.max (f32x4.abs (local.get $qa)) (f32x4.abs (local.get $qb)))))
      (if (local.get $int4)
        (then
          (local.set $bias
            (f32x4.add (local.get $bias)
              (f32x4.add
                (f32x4.mul (local.get $qa)
                  (f32x4.convert_i32x4_s
                    (i32x4.extend_low_i16x8_s (i16x8.extend_low_i8x16_s (v128.load32_zero (local.get $pz))))))
                (f32x4.mul (local.get $qb)
                  (f32x4.convert_i32x4_s
                    (i32x4.extend_low_i16x8_s (i16x8.extend_low_i8x16_s (v128.load32_zero offset=4 (local.get $pz)))))))))))
      (local.set $pq (i32.add (local.get $pq) (i32.const 32)))
      (local.set $ps (i32.add (local.get $ps) (i32.const 16)))
      (local.set $po (i32.add (local.get $po) (i32.const 32)))
      (local.set $pz (i32.add (local.get $pz) (i32.const 8)))
      (br $aLoop)))
    (local.set $amaxS
      (f32.max
        (f32.max (f32x4.extract_lane 0 (local.get $amax)) (f32x4.extract_lane 1 (local.get $amax)))
        (f32.max (f32x4.extract_lane 2 (local.get $amax)) (f32x4.extract_lane 3 (local.get $amax)))))
    (local.set $inv (f32x4.splat (f32.div (f32.const 32767) (local.get $amaxS))))
    (local.set $fac (f32.mul (f32.div (local.get $amaxS) (f32.const 32767)) (local.get $scale)))
    (local.set $bs
      (f32.mul (f32.neg
        (f32.add
          (f32.add (f32x4.extract_lane 0 (local.get $bias)) (f32x4.extract_lane 1 (local.get $bias)))
          (f32.add (f32x4.extract_lane 2 (local.get $bias)) (f32x4.extract_lane 3 (local.get $bias)))))
        (local.get $scale)))
    ;; q16 = round(q' * 32767 / max|q'|), rounded by adding 1.5 * 2^23 (the float's low bits are then
    ;; the integer) and subtracting that float's bits: two instructions where trunc_sat takes
    ;; several on x64. A zero or non-finite max gives a zero or NaN factor, so the scores are the
    ;; zero-point term or NaN whatever the integers.
    (local.set $po (local.get $qs))
    (local.set $ps (local.get $q16))
    (local.set $end (i32.add (local.get $qs) (i32.shl (local.get $hsPad) (i32.const 2))))
    (block $bDone (loop $bLoop
      (br_if $bDone (i32.ge_u (local.get $po) (local.get $end)))
      (v128.store (local.get $ps)
        (i16x8.narrow_i32x4_s
          (i32x4.sub
            (f32x4.add (f32x4.mul (v128.load (local.get $po)) (local.get $inv)) (v128.const f32x4 12582912 12582912 12582912 12582912))
            (v128.const i32x4 0x4b400000 0x4b400000 0x4b400000 0x4b400000))
          (i32x4.sub
            (f32x4.add (f32x4.mul (v128.load offset=16 (local.get $po)) (local.get $inv)) (v128.const f32x4 12582912 12582912 12582912 12582912))
            (v128.const i32x4 0x4b400000 0x4b400000 0x4b400000 0x4b400000))))
      (local.set $po (i32.add (local.get $po) (i32.const 32)))
      (local.set $ps (i32.add (local.get $ps) (i32.const 16)))
      (br $bLoop)))
    (local.set $kr (i32.add (local.get $kg) (i32.mul (local.get $r) (local.get $rowBytes))))
    (local.set $n4 (i32.and (local.get $n) (i32.const -4)))
    (local.set $mv (f32x4.splat (local.get $m)))
    ;; Four rows at a time: integer dot products, then the transpose-and-add of the float path.
    (block $q4Done (loop $q4Loop
      (br_if $q4Done (i32.ge_u (local.get $p) (local.get $n4)))
      (local.set $k1 (i32.add (local.get $kr) (local.get $rowBytes)))
      (local.set $k2 (i32.add (local.get $k1) (local.get $rowBytes)))
      (local.set $k3 (i32.add (local.get $k2) (local.get $rowBytes)))
      (local.set $a0 (v128.const i32x4 0 0 0 0))
      (local.set $a1 (v128.const i32x4 0 0 0 0))
      (local.set $a2 (v128.const i32x4 0 0 0 0))
      (local.set $a3 (v128.const i32x4 0 0 0 0))
      (if (local.get $int4)
        (then
          (local.set $c (i32.const 0))
          (block $c4Done (loop $c4Loop
            (br_if $c4Done (i32.ge_u (local.get $c) (local.get $hsPad)))
            (local.set $w0 (v128.load offset=0 (i32.add (local.get $q16) (i32.shl (local.get $c) (i32.const 1)))))
            (local.set $w1 (v128.load offset=16 (i32.add (local.get $q16) (i32.shl (local.get $c) (i32.const 1)))))
            (local.set $w2 (v128.load offset=32 (i32.add (local.get $q16) (i32.shl (local.get $c) (i32.const 1)))))
            (local.set $w3 (v128.load offset=48 (i32.add (local.get $q16) (i32.shl (local.get $c) (i32.const 1)))))
            (local.set $x (v128.load (i32.add (local.get $kr) (i32.shr_u (local.get $c) (i32.const 1)))))
                      (local.set $lo (v128.and (local.get $x) (v128.const i8x16 15 15 15 15 15 15 15 15 15 15 15 15 15 15 15 15)))
                      (local.set $x (i8x16.shr_u (local.get $x) (i32.const 4)))
                      (local.set $a0 (i32x4.add (local.get $a0) (i32x4.add
                        (i32x4.add (i32x4.dot_i16x8_s (i16x8.extend_low_i8x16_u (local.get $lo)) (local.get $w0))
                                   (i32x4.dot_i16x8_s (i16x8.extend_high_i8x16_u (local.get $lo)) (local.get $w1)))
                        (i32x4.add (i32x4.dot_i16x8_s (i16x8.extend_low_i8x16_u (local.get $x)) (local.get $w2))
                                   (i32x4.dot_i16x8_s (i16x8.extend_high_i8x16_u (local.get $x)) (local.get $w3))))))
            (local.set $x (v128.load (i32.add (local.get $k1) (i32.shr_u (local.get $c) (i32.const 1)))))
                      (local.set $lo (v128.and (local.get $x) (v128.const i8x16 15 15 15 15 15 15 15 15 15 15 15 15 15 15 15 15)))
                      (local.set $x (i8x16.shr_u (local.get $x) (i32.const 4)))
                      (local.set $a1 (i32x4.add (local.get $a1) (i32x4.add
                        (i32x4.add (i32x4.dot_i16x8_s (i16x8.extend_low_i8x16_u (local.get $lo)) (local.get $w0))
                                   (i32x4.dot_i16x8_s (i16x8.extend_high_i8x16_u (local.get $lo)) (local.get $w1)))
                        (i32x4.add (i32x4.dot_i16x8_s (i16x8.extend_low_i8x16_u (local.get $x)) (local.get $w2))
                                   (i32x4.dot_i16x8_s (i16x8.extend_high_i8x16_u (local.get $x)) (local.get $w3))))))
            (local.set $x (v128.load (i32.add (local.get $k2) (i32.shr_u (local.get $c) (i32.const 1)))))
                      (local.set $lo (v128.and (local.get $x) (v128.const i8x16 15 15 15 15 15 15 15 15 15 15 15 15 15 15 15 15)))
                      (local.set $x (i8x16.shr_u (local.get $x) (i32.const 4)))
                      (local.set $a2 (i32x4.add (local.get $a2) (i32x4.add
                        (i32x4.add (i32x4.dot_i16x8_s (i16x8.extend_low_i8x16_u (local.get $lo)) (local.get $w0))
                                   (i32x4.dot_i16x8_s (i16x8.extend_high_i8x16_u (local.get $lo)) (local.get $w1)))
                        (i32x4.add (i32x4.dot_i16x8_s (i16x8.extend_low_i8x16_u (local.get $x)) (local.get $w2))
                                   (i32x4.dot_i16x8_s (i16x8.extend_high_i8x16_u (local.get $x)) (local.get $w3))))))
            (local.set $x (v128.load (i32.add (local.get $k3) (i32.shr_u (local.get $c) (i32.const 1)))))
                      (local.set $lo (v128.and (local.get $x) (v128.const i8x16 15 15 15 15 15 15 15 15 15 15 15 15 15 15 15 15)))
                      (local.set $x (i8x16.shr_u (local.get $x) (i32.const 4)))
                      (local.set $a3 (i32x4.add (local.get $a3) (i32x4.add
                        (i32x4.add (i32x4.dot_i16x8_s (i16x8.extend_low_i8x16_u (local.get $lo)) (local.get $w0))
                                   (i32x4.dot_i16x8_s (i16x8.extend_high_i8x16_u (local.get $lo)) (local.get $w1)))
                        (i32x4.add (i32x4.dot_i16x8_s (i16x8.extend_low_i8x16_u (local.get $x)) (local.get $w2))
                                   (i32x4.dot_i16x8_s (i16x8.extend_high_i8x16_u (local.get $x)) (local.get $w3))))))
            (local.set $c (i32.add (local.get $c) (i32.const 32)))
            (br $c4Loop)))
        )
        (else
          (local.set $c (i32.const 0))
          (block $c8Done (loop $c8Loop
            (br_if $c8Done (i32.ge_u (local.get $c) (local.get $hsPad)))
            (local.set $w0 (v128.load offset=0 (i32.add (local.get $q16) (i32.shl (local.get $c) (i32.const 1)))))
            (local.set $w1 (v128.load offset=16 (i32.add (local.get $q16) (i32.shl (local.get $c) (i32.const 1)))))
            (local.set $a0 (i32x4.add (local.get $a0) (i32x4.add
                        (i32x4.dot_i16x8_s (v128.load8x8_s (i32.add (local.get $kr) (local.get $c))) (local.get $w0))
                        (i32x4.dot_i16x8_s (v128.load8x8_s offset=8 (i32.add (local.get $kr) (local.get $c))) (local.get $w1)))))
            (local.set $a1 (i32x4.add (local.get $a1) (i32x4.add
                        (i32x4.dot_i16x8_s (v128.load8x8_s (i32.add (local.get $k1) (local.get $c))) (local.get $w0))
                        (i32x4.dot_i16x8_s (v128.load8x8_s offset=8 (i32.add (local.get $k1) (local.get $c))) (local.get $w1)))))
            (local.set $a2 (i32x4.add (local.get $a2) (i32x4.add
                        (i32x4.dot_i16x8_s (v128.load8x8_s (i32.add (local.get $k2) (local.get $c))) (local.get $w0))
                        (i32x4.dot_i16x8_s (v128.load8x8_s offset=8 (i32.add (local.get $k2) (local.get $c))) (local.get $w1)))))
            (local.set $a3 (i32x4.add (local.get $a3) (i32x4.add
                        (i32x4.dot_i16x8_s (v128.load8x8_s (i32.add (local.get $k3) (local.get $c))) (local.get $w0))
                        (i32x4.dot_i16x8_s (v128.load8x8_s offset=8 (i32.add (local.get $k3) (local.get $c))) (local.get $w1)))))
            (local.set $c (i32.add (local.get $c) (i32.const 16)))
            (br $c8Loop)))
        ))
      (local.set $a0 (f32x4.convert_i32x4_s (local.get $a0)))
      (local.set $a1 (f32x4.convert_i32x4_s (local.get $a1)))
      (local.set $a2 (f32x4.convert_i32x4_s (local.get $a2)))
      (local.set $a3 (f32x4.convert_i32x4_s (local.get $a3)))
      (local.set $a0
        (f32x4.add
          (i8x16.shuffle 0 1 2 3 16 17 18 19 4 5 6 7 20 21 22 23 (local.get $a0) (local.get $a1))
          (i8x16.shuffle 8 9 10 11 24 25 26 27 12 13 14 15 28 29 30 31 (local.get $a0) (local.get $a1))))
      (local.set $a2
        (f32x4.add
          (i8x16.shuffle 0 1 2 3 16 17 18 19 4 5 6 7 20 21 22 23 (local.get $a2) (local.get $a3))
          (i8x16.shuffle 8 9 10 11 24 25 26 27 12 13 14 15 28 29 30 31 (local.get $a2) (local.get $a3))))
      (local.set $sv
        (f32x4.add (f32x4.splat (local.get $bs))
          (f32x4.mul (f32x4.splat (local.get $fac))
            (f32x4.add
              (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23 (local.get $a0) (local.get $a2))
              (i8x16.shuffle 8 9 10 11 12 13 14 15 24 25 26 27 28 29 30 31 (local.get $a0) (local.get $a2))))))
      (v128.store (local.get $sp) (local.get $sv))
      (local.set $mv (f32x4.max (local.get $mv) (local.get $sv)))
      (local.set $kr (i32.add (local.get $k3) (local.get $rowBytes)))
      (local.set $sp (i32.add (local.get $sp) (i32.const 16)))
      (local.set $p (i32.add (local.get $p) (i32.const 4)))
      (br $q4Loop)))
    (local.set $m
      (f32.max
        (f32.max (f32x4.extract_lane 0 (local.get $mv)) (f32x4.extract_lane 1 (local.get $mv)))
        (f32.max (f32x4.extract_lane 2 (local.get $mv)) (f32x4.extract_lane 3 (local.get $mv)))))
    ;; The remaining rows one at a time.
    (block $p1Done (loop $p1Loop
      (br_if $p1Done (i32.ge_u (local.get $p) (local.get $n)))
      (local.set $a0 (v128.const i32x4 0 0 0 0))
      (if (local.get $int4)
        (then
          (local.set $c (i32.const 0))
          (block $t4Done (loop $t4Loop
            (br_if $t4Done (i32.ge_u (local.get $c) (local.get $hsPad)))
            (local.set $w0 (v128.load offset=0 (i32.add (local.get $q16) (i32.shl (local.get $c) (i32.const 1)))))
            (local.set $w1 (v128.load offset=16 (i32.add (local.get $q16) (i32.shl (local.get $c) (i32.const 1)))))
            (local.set $w2 (v128.load offset=32 (i32.add (local.get $q16) (i32.shl (local.get $c) (i32.const 1)))))
            (local.set $w3 (v128.load offset=48 (i32.add (local.get $q16) (i32.shl (local.get $c) (i32.const 1)))))
            (local.set $x (v128.load (i32.add (local.get $kr) (i32.shr_u (local.get $c) (i32.const 1)))))
                      (local.set $lo (v128.and (local.get $x) (v128.const i8x16 15 15 15 15 15 15 15 15 15 15 15 15 15 15 15 15)))
                      (local.set $x (i8x16.shr_u (local.get $x) (i32.const 4)))
                      (local.set $a0 (i32x4.add (local.get $a0) (i32x4.add
                        (i32x4.add (i32x4.dot_i16x8_s (i16x8.extend_low_i8x16_u (local.get $lo)) (local.get $w0))
                                   (i32x4.dot_i16x8_s (i16x8.extend_high_i8x16_u (local.get $lo)) (local.get $w1)))
                        (i32x4.add (i32x4.dot_i16x8_s (i16x8.extend_low_i8x16_u (local.get $x)) (local.get $w2))
                                   (i32x4.dot_i16x8_s (i16x8.extend_high_i8x16_u (local.get $x)) (local.get $w3))))))
            (local.set $c (i32.add (local.get $c) (i32.const 32)))
            (br $t4Loop)))
        )
        (else
          (local.set $c (i32.const 0))
          (block $t8Done (loop $t8Loop
            (br_if $t8Done (i32.ge_u (local.get $c) (local.get $hsPad)))
            (local.set $w0 (v128.load offset=0 (i32.add (local.get $q16) (i32.shl (local.get $c) (i32.const 1)))))
            (local.set $w1 (v128.load offset=16 (i32.add (local.get $q16) (i32.shl (local.get $c) (i32.const 1)))))
            (local.set $a0 (i32x4.add (local.get $a0) (i32x4.add
                        (i32x4.dot_i16x8_s (v128.load8x8_s (i32.add (local.get $kr) (local.get $c))) (local.get $w0))
                        (i32x4.dot_i16x8_s (v128.load8x8_s offset=8 (i32.add (local.get $kr) (local.get $c))) (local.get $w1)))))
            (local.set $c (i32.add (local.get $c) (i32.const 16)))
            (br $t8Loop)))
        ))
      (local.set $a0 (f32x4.convert_i32x4_s (local.get $a0)))
      (local.set $qa
        (f32x4.splat
          (f32.add (local.get $bs)
            (f32.mul (local.get $fac)
              (f32.add
                (f32.add (f32x4.extract_lane 0 (local.get $a0)) (f32x4.extract_lane 1 (local.get $a0)))
                (f32.add (f32x4.extract_lane 2 (local.get $a0)) (f32x4.extract_lane 3 (local.get $a0))))))))
      (f32.store (local.get $sp) (f32x4.extract_lane 0 (local.get $qa)))
      (local.set $m (f32.max (local.get $m) (f32x4.extract_lane 0 (local.get $qa))))
      (local.set $kr (i32.add (local.get $kr) (local.get $rowBytes)))
      (local.set $sp (i32.add (local.get $sp) (i32.const 4)))
      (local.set $p (i32.add (local.get $p) (i32.const 1)))
      (br $p1Loop)))
    (local.get $m))

  ;; The sum of a vector's four lanes.
  (func $hsum (param $v v128) (result f32)
    (f32.add
      (f32.add (f32x4.extract_lane 0 (local.get $v)) (f32x4.extract_lane 1 (local.get $v)))
      (f32.add (f32x4.extract_lane 2 (local.get $v)) (f32x4.extract_lane 3 (local.get $v)))))

  ;; vacc += sum_p w_p v_p over n consecutive rows from row r of the value group at vg, w_p = sp[p],
  ;; in blocks of at most 32 rows.
  (func $value_qgroup (param $qd i32) (param $vg i32) (param $r i32) (param $n i32) (param $sp i32)
    (local $k i32)
    (block $done (loop $next
      (br_if $done (i32.eqz (local.get $n)))
      (local.set $k (select (i32.const 32) (local.get $n) (i32.gt_u (local.get $n) (i32.const 32))))
      (call $value_qblock (local.get $qd) (local.get $vg) (local.get $r) (local.get $k) (local.get $sp))
      (local.set $r (i32.add (local.get $r) (local.get $k)))
      (local.set $sp (i32.add (local.get $sp) (i32.shl (local.get $k) (i32.const 2))))
      (local.set $n (i32.sub (local.get $n) (local.get $k)))
      (br $next))))

  ;; One block of rows [r, r + k), k <= 32, of the value group at vg. Value rows are stored in
  ;; pairs (rows 2i and 2i+1 interleaved byte by byte), so the block is read as the pairs covering
  ;; it, rows outside it weighted 0. The weights a = w_p * s_p,g (one per row and channel group)
  ;; are rounded to int16 against the block's largest and kept as pairs; i32x4.dot_i16x8_s then
  ;; adds a_p u_p + a_p+1 u_p+1 per channel in int32 (at most 17 pairs of 2 * 32767 * 127: no
  ;; overflow), and vacc gets the sums times the block's weight scale. The int4 zero point is
  ;; subtracted in float with the unrounded weights. Reads of scales or scores past the block are
  ;; masked to 0 (their memory is inside the allocation: see QuantizedLayer).
  (func $value_qblock (param $qd i32) (param $vg i32) (param $r i32) (param $k i32) (param $sp i32)
    (local $hsPad i32) (local $rowBytes i32) (local $rowBytes2 i32) (local $nvg i32) (local $lg i32)
    (local $vacc i32) (local $af i32) (local $wtab i32) (local $zb i32) (local $int4 i32)
    (local $p0 i32) (local $end i32) (local $span i32) (local $npairs i32) (local $pair0 i32)
    (local $scales i32) (local $zeros i32) (local $w0 i32) (local $t i32) (local $g i32)
    (local $pp i32) (local $cb i32) (local $x i32) (local $wp i32) (local $wq i32)
    (local $o0 i32) (local $o1 i32) (local $o2 i32) (local $o3 i32)
    (local $o4 i32) (local $o5 i32) (local $o6 i32) (local $o7 i32)
    (local $ps i32) (local $pz i32) (local $pa i32) (local $pw i32)
    (local $amax f32) (local $zsum f32)
    (local $mask v128) (local $av v128) (local $mv v128) (local $zv v128) (local $inv v128)
    (local $sa v128) (local $y0 v128) (local $y1 v128) (local $z v128) (local $wv0 v128) (local $wv1 v128)
    (local $a0 v128) (local $a1 v128) (local $a2 v128) (local $a3 v128)
    (local $a4 v128) (local $a5 v128) (local $a6 v128) (local $a7 v128)
    (local.set $hsPad (i32.load offset=36 (local.get $qd)))
    (local.set $rowBytes (i32.load offset=32 (local.get $qd)))
    (local.set $rowBytes2 (i32.shl (local.get $rowBytes) (i32.const 1)))
    (local.set $nvg (i32.load offset=40 (local.get $qd)))
    (local.set $lg (i32.load offset=4 (local.get $qd)))
    (local.set $vacc (i32.load offset=52 (local.get $qd)))
    (local.set $af (i32.load offset=56 (local.get $qd)))
    (local.set $wtab (i32.load offset=60 (local.get $qd)))
    (local.set $zb (i32.load offset=64 (local.get $qd)))
    (local.set $int4 (i32.eq (i32.load (local.get $qd)) (i32.const 4)))
    ;; The pairs covering [r, r + k): rows [p0, p0 + span), span = 2 * npairs <= 34.
    (local.set $p0 (i32.and (local.get $r) (i32.const -2)))
    (local.set $end (i32.add (local.get $r) (local.get $k)))
    (local.set $span (i32.and (i32.add (i32.sub (local.get $end) (local.get $p0)) (i32.const 1)) (i32.const -2)))
    (local.set $npairs (i32.shr_u (local.get $span) (i32.const 1)))
    (local.set $pair0 (i32.add (local.get $vg) (i32.mul (local.get $p0) (local.get $rowBytes))))
    (local.set $scales (i32.add (local.get $vg) (i32.shl (local.get $rowBytes) (local.get $lg))))
    (local.set $zeros (i32.add (local.get $scales) (i32.shl (i32.shl (local.get $nvg) (local.get $lg)) (i32.const 1))))
    ;; w of row p0 (one before the block's first row when r is odd; masked).
    (local.set $w0 (i32.sub (local.get $sp) (i32.shl (i32.sub (local.get $r) (local.get $p0)) (i32.const 2))))
    ;; af[g][t] = w_t * s_t,g (0 outside [r, r + k)), 48 floats per g, four rows at a time with
    ;; running pointers (g outer: a channel group's scales are contiguous); their maximum; and
    ;; (int4) zb[g] = sum_t af[g][t] * z_t,g. Only the first and last four rows can fall outside
    ;; [r, end): their lanes are cleared after the product, so that what was read past the block
    ;; (even NaN) counts as 0.
    (local.set $mv (v128.const f32x4 0 0 0 0))
    (local.set $ps (i32.add (local.get $scales) (i32.shl (local.get $p0) (i32.const 1))))
    (local.set $pz (i32.add (local.get $zeros) (local.get $p0)))
    (local.set $pa (local.get $af))
    (local.set $g (i32.const 0))
    (block $gDone (loop $gLoop
      (br_if $gDone (i32.ge_u (local.get $g) (local.get $nvg)))
      (local.set $zv (v128.const f32x4 0 0 0 0))
      (local.set $pw (local.get $w0))
      (local.set $x (local.get $ps))
      (local.set $wp (local.get $pz))
      (local.set $wq (local.get $pa))
      (local.set $t (i32.const 0))
      (block $tDone (loop $tLoop
        (br_if $tDone (i32.ge_u (local.get $t) (local.get $span)))
        (local.set $av
          (f32x4.mul (v128.load (local.get $pw))
            (i32x4.shl (v128.load16x4_u (local.get $x)) (i32.const 16))))
        (if (i32.or (i32.eqz (local.get $t))
              (i32.gt_u (i32.add (i32.add (local.get $p0) (local.get $t)) (i32.const 4)) (local.get $end)))
          (then
            (local.set $mask
              (i32x4.add (i32x4.splat (i32.add (local.get $p0) (local.get $t))) (v128.const i32x4 0 1 2 3)))
            (local.set $av
              (v128.and (local.get $av)
                (v128.and
                  (i32x4.ge_s (local.get $mask) (i32x4.splat (local.get $r)))
                  (i32x4.lt_s (local.get $mask) (i32x4.splat (local.get $end))))))))
        (v128.store (local.get $wq) (local.get $av))
        (local.set $mv (f32x4.max (local.get $mv) (local.get $av)))
        (if (local.get $int4)
          (then
            (local.set $zv
              (f32x4.add (local.get $zv)
                (f32x4.mul (local.get $av)
                  (f32x4.convert_i32x4_s
                    (i32x4.extend_low_i16x8_s (i16x8.extend_low_i8x16_s (v128.load32_zero (local.get $wp))))))))))
        (local.set $pw (i32.add (local.get $pw) (i32.const 16)))
        (local.set $x (i32.add (local.get $x) (i32.const 8)))
        (local.set $wp (i32.add (local.get $wp) (i32.const 4)))
        (local.set $wq (i32.add (local.get $wq) (i32.const 16)))
        (local.set $t (i32.add (local.get $t) (i32.const 4)))
        (br $tLoop)))
      ;; The lanes past span (when span % 4 == 2) and 8 more are zero for the pairing below.
      (v128.store (local.get $wq) (v128.const f32x4 0 0 0 0))
      (v128.store offset=16 (local.get $wq) (v128.const f32x4 0 0 0 0))
      (if (local.get $int4)
        (then (f32.store (i32.add (local.get $zb) (i32.shl (local.get $g) (i32.const 2))) (call $hsum (local.get $zv)))))
      (local.set $ps (i32.add (local.get $ps) (i32.shl (i32.shl (i32.const 1) (local.get $lg)) (i32.const 1))))
      (local.set $pz (i32.add (local.get $pz) (i32.shl (i32.const 1) (local.get $lg))))
      (local.set $pa (i32.add (local.get $pa) (i32.const 192)))
      (local.set $g (i32.add (local.get $g) (i32.const 1)))
      (br $gLoop)))
    (local.set $amax
      (f32.max
        (f32.max (f32x4.extract_lane 0 (local.get $mv)) (f32x4.extract_lane 1 (local.get $mv)))
        (f32.max (f32x4.extract_lane 2 (local.get $mv)) (f32x4.extract_lane 3 (local.get $mv)))))
    ;; wtab[g][pair] (20 int32 per g): rows 2 pair and 2 pair + 1 as int16 = round(a * 32767 / amax)
    ;; (rounded as the query is in $score_qgroup).
    (local.set $inv (f32x4.splat (f32.div (f32.const 32767) (local.get $amax))))
    (local.set $sa (f32x4.splat (f32.div (local.get $amax) (f32.const 32767))))
    (local.set $pa (local.get $af))
    (local.set $wq (local.get $wtab))
    (local.set $g (i32.const 0))
    (block $hDone (loop $hLoop
      (br_if $hDone (i32.ge_u (local.get $g) (local.get $nvg)))
      (local.set $x (local.get $pa))
      (local.set $wp (local.get $wq))
      (local.set $t (i32.const 0))
      (block $qDone (loop $qLoop
        (br_if $qDone (i32.ge_u (local.get $t) (local.get $span)))
        (v128.store (local.get $wp)
          (i16x8.narrow_i32x4_s
            (i32x4.sub
              (f32x4.add (f32x4.mul (v128.load (local.get $x)) (local.get $inv)) (v128.const f32x4 12582912 12582912 12582912 12582912))
              (v128.const i32x4 0x4b400000 0x4b400000 0x4b400000 0x4b400000))
            (i32x4.sub
              (f32x4.add (f32x4.mul (v128.load offset=16 (local.get $x)) (local.get $inv)) (v128.const f32x4 12582912 12582912 12582912 12582912))
              (v128.const i32x4 0x4b400000 0x4b400000 0x4b400000 0x4b400000))))
        (local.set $x (i32.add (local.get $x) (i32.const 32)))
        (local.set $wp (i32.add (local.get $wp) (i32.const 16)))
        (local.set $t (i32.add (local.get $t) (i32.const 8)))
        (br $qLoop)))
      (local.set $pa (i32.add (local.get $pa) (i32.const 192)))
      (local.set $wq (i32.add (local.get $wq) (i32.const 80)))
      (local.set $g (i32.add (local.get $g) (i32.const 1)))
      (br $hLoop)))
    (if (local.get $int4)
      (then
        (if (i32.ge_u (local.get $lg) (i32.const 4))
          (then
            (local.set $cb (i32.const 0))
            (block $w4Done (loop $w4Loop
              (br_if $w4Done (i32.ge_u (local.get $cb) (local.get $hsPad)))
              (local.set $a0 (v128.const i32x4 0 0 0 0))
              (local.set $a1 (v128.const i32x4 0 0 0 0))
              (local.set $a2 (v128.const i32x4 0 0 0 0))
              (local.set $a3 (v128.const i32x4 0 0 0 0))
              (local.set $a4 (v128.const i32x4 0 0 0 0))
              (local.set $a5 (v128.const i32x4 0 0 0 0))
              (local.set $a6 (v128.const i32x4 0 0 0 0))
              (local.set $a7 (v128.const i32x4 0 0 0 0))
              (local.set $x (i32.add (local.get $pair0) (local.get $cb)))
              (local.set $wp (i32.add (local.get $wtab) (i32.mul (i32.shr_u (local.get $cb) (local.get $lg)) (i32.const 80))))
              (local.set $wq (i32.add (local.get $wtab) (i32.mul (i32.shr_u (i32.add (local.get $cb) (i32.const 16)) (local.get $lg)) (i32.const 80))))
              (local.set $pp (i32.const 0))
              (block $w4pDone (loop $w4pLoop
                (br_if $w4pDone (i32.ge_u (local.get $pp) (local.get $npairs)))
                (local.set $y0 (v128.load (local.get $x)))
                (local.set $y1 (v128.load offset=16 (local.get $x)))
                (local.set $wv0 (v128.load32_splat (local.get $wp)))
                (local.set $wv1 (v128.load32_splat (local.get $wq)))
                (local.set $z (v128.and (local.get $y0) (v128.const i8x16 15 15 15 15 15 15 15 15 15 15 15 15 15 15 15 15)))
                (local.set $a0 (i32x4.add (local.get $a0) (i32x4.dot_i16x8_s (i16x8.extend_low_i8x16_u (local.get $z)) (local.get $wv0))))
                (local.set $a1 (i32x4.add (local.get $a1) (i32x4.dot_i16x8_s (i16x8.extend_high_i8x16_u (local.get $z)) (local.get $wv0))))
                (local.set $z (v128.and (local.get $y1) (v128.const i8x16 15 15 15 15 15 15 15 15 15 15 15 15 15 15 15 15)))
                (local.set $a2 (i32x4.add (local.get $a2) (i32x4.dot_i16x8_s (i16x8.extend_low_i8x16_u (local.get $z)) (local.get $wv0))))
                (local.set $a3 (i32x4.add (local.get $a3) (i32x4.dot_i16x8_s (i16x8.extend_high_i8x16_u (local.get $z)) (local.get $wv0))))
                (local.set $z (i8x16.shr_u (local.get $y0) (i32.const 4)))
                (local.set $a4 (i32x4.add (local.get $a4) (i32x4.dot_i16x8_s (i16x8.extend_low_i8x16_u (local.get $z)) (local.get $wv1))))
                (local.set $a5 (i32x4.add (local.get $a5) (i32x4.dot_i16x8_s (i16x8.extend_high_i8x16_u (local.get $z)) (local.get $wv1))))
                (local.set $z (i8x16.shr_u (local.get $y1) (i32.const 4)))
                (local.set $a6 (i32x4.add (local.get $a6) (i32x4.dot_i16x8_s (i16x8.extend_low_i8x16_u (local.get $z)) (local.get $wv1))))
                (local.set $a7 (i32x4.add (local.get $a7) (i32x4.dot_i16x8_s (i16x8.extend_high_i8x16_u (local.get $z)) (local.get $wv1))))
                (local.set $x (i32.add (local.get $x) (local.get $rowBytes2)))
                (local.set $wp (i32.add (local.get $wp) (i32.const 4)))
                (local.set $wq (i32.add (local.get $wq) (i32.const 4)))
                (local.set $pp (i32.add (local.get $pp) (i32.const 1)))
                (br $w4pLoop)))
              (v128.store (i32.add (local.get $vacc) (i32.shl (local.get $cb) (i32.const 2))) (f32x4.add (v128.load (i32.add (local.get $vacc) (i32.shl (local.get $cb) (i32.const 2)))) (f32x4.mul (local.get $sa) (f32x4.convert_i32x4_s (local.get $a0)))))
              (v128.store (i32.add (local.get $vacc) (i32.shl (i32.add (local.get $cb) (i32.const 4)) (i32.const 2))) (f32x4.add (v128.load (i32.add (local.get $vacc) (i32.shl (i32.add (local.get $cb) (i32.const 4)) (i32.const 2)))) (f32x4.mul (local.get $sa) (f32x4.convert_i32x4_s (local.get $a1)))))
              (v128.store (i32.add (local.get $vacc) (i32.shl (i32.add (local.get $cb) (i32.const 8)) (i32.const 2))) (f32x4.add (v128.load (i32.add (local.get $vacc) (i32.shl (i32.add (local.get $cb) (i32.const 8)) (i32.const 2)))) (f32x4.mul (local.get $sa) (f32x4.convert_i32x4_s (local.get $a2)))))
              (v128.store (i32.add (local.get $vacc) (i32.shl (i32.add (local.get $cb) (i32.const 12)) (i32.const 2))) (f32x4.add (v128.load (i32.add (local.get $vacc) (i32.shl (i32.add (local.get $cb) (i32.const 12)) (i32.const 2)))) (f32x4.mul (local.get $sa) (f32x4.convert_i32x4_s (local.get $a3)))))
              (v128.store (i32.add (local.get $vacc) (i32.shl (i32.add (local.get $cb) (i32.const 16)) (i32.const 2))) (f32x4.add (v128.load (i32.add (local.get $vacc) (i32.shl (i32.add (local.get $cb) (i32.const 16)) (i32.const 2)))) (f32x4.mul (local.get $sa) (f32x4.convert_i32x4_s (local.get $a4)))))
              (v128.store (i32.add (local.get $vacc) (i32.shl (i32.add (local.get $cb) (i32.const 20)) (i32.const 2))) (f32x4.add (v128.load (i32.add (local.get $vacc) (i32.shl (i32.add (local.get $cb) (i32.const 20)) (i32.const 2)))) (f32x4.mul (local.get $sa) (f32x4.convert_i32x4_s (local.get $a5)))))
              (v128.store (i32.add (local.get $vacc) (i32.shl (i32.add (local.get $cb) (i32.const 24)) (i32.const 2))) (f32x4.add (v128.load (i32.add (local.get $vacc) (i32.shl (i32.add (local.get $cb) (i32.const 24)) (i32.const 2)))) (f32x4.mul (local.get $sa) (f32x4.convert_i32x4_s (local.get $a6)))))
              (v128.store (i32.add (local.get $vacc) (i32.shl (i32.add (local.get $cb) (i32.const 28)) (i32.const 2))) (f32x4.add (v128.load (i32.add (local.get $vacc) (i32.shl (i32.add (local.get $cb) (i32.const 28)) (i32.const 2)))) (f32x4.mul (local.get $sa) (f32x4.convert_i32x4_s (local.get $a7)))))
              (local.set $cb (i32.add (local.get $cb) (i32.const 32)))
              (br $w4Loop)))
          )
          (else
            (local.set $cb (i32.const 0))
            (block $n4Done (loop $n4Loop
              (br_if $n4Done (i32.ge_u (local.get $cb) (local.get $hsPad)))
              (local.set $a0 (v128.const i32x4 0 0 0 0))
              (local.set $a1 (v128.const i32x4 0 0 0 0))
              (local.set $a2 (v128.const i32x4 0 0 0 0))
              (local.set $a3 (v128.const i32x4 0 0 0 0))
              (local.set $a4 (v128.const i32x4 0 0 0 0))
              (local.set $a5 (v128.const i32x4 0 0 0 0))
              (local.set $a6 (v128.const i32x4 0 0 0 0))
              (local.set $a7 (v128.const i32x4 0 0 0 0))
              (local.set $x (i32.add (local.get $pair0) (local.get $cb)))
              (local.set $o0 (i32.mul (i32.shr_u (local.get $cb) (local.get $lg)) (i32.const 80)))
              (local.set $o1 (i32.mul (i32.shr_u (i32.add (local.get $cb) (i32.const 4)) (local.get $lg)) (i32.const 80)))
              (local.set $o2 (i32.mul (i32.shr_u (i32.add (local.get $cb) (i32.const 8)) (local.get $lg)) (i32.const 80)))
              (local.set $o3 (i32.mul (i32.shr_u (i32.add (local.get $cb) (i32.const 12)) (local.get $lg)) (i32.const 80)))
              (local.set $o4 (i32.mul (i32.shr_u (i32.add (local.get $cb) (i32.const 16)) (local.get $lg)) (i32.const 80)))
              (local.set $o5 (i32.mul (i32.shr_u (i32.add (local.get $cb) (i32.const 20)) (local.get $lg)) (i32.const 80)))
              (local.set $o6 (i32.mul (i32.shr_u (i32.add (local.get $cb) (i32.const 24)) (local.get $lg)) (i32.const 80)))
              (local.set $o7 (i32.mul (i32.shr_u (i32.add (local.get $cb) (i32.const 28)) (local.get $lg)) (i32.const 80)))
              (local.set $wp (local.get $wtab))
              (local.set $pp (i32.const 0))
              (block $n4pDone (loop $n4pLoop
                (br_if $n4pDone (i32.ge_u (local.get $pp) (local.get $npairs)))
                (local.set $y0 (v128.load (local.get $x)))
                (local.set $y1 (v128.load offset=16 (local.get $x)))
                (local.set $z (v128.and (local.get $y0) (v128.const i8x16 15 15 15 15 15 15 15 15 15 15 15 15 15 15 15 15)))
                (local.set $a0 (i32x4.add (local.get $a0) (i32x4.dot_i16x8_s (i16x8.extend_low_i8x16_u (local.get $z)) (v128.load32_splat (i32.add (local.get $wp) (local.get $o0))))))
                (local.set $a1 (i32x4.add (local.get $a1) (i32x4.dot_i16x8_s (i16x8.extend_high_i8x16_u (local.get $z)) (v128.load32_splat (i32.add (local.get $wp) (local.get $o1))))))
                (local.set $z (v128.and (local.get $y1) (v128.const i8x16 15 15 15 15 15 15 15 15 15 15 15 15 15 15 15 15)))
                (local.set $a2 (i32x4.add (local.get $a2) (i32x4.dot_i16x8_s (i16x8.extend_low_i8x16_u (local.get $z)) (v128.load32_splat (i32.add (local.get $wp) (local.get $o2))))))
                (local.set $a3 (i32x4.add (local.get $a3) (i32x4.dot_i16x8_s (i16x8.extend_high_i8x16_u (local.get $z)) (v128.load32_splat (i32.add (local.get $wp) (local.get $o3))))))
                (local.set $z (i8x16.shr_u (local.get $y0) (i32.const 4)))
                (local.set $a4 (i32x4.add (local.get $a4) (i32x4.dot_i16x8_s (i16x8.extend_low_i8x16_u (local.get $z)) (v128.load32_splat (i32.add (local.get $wp) (local.get $o4))))))
                (local.set $a5 (i32x4.add (local.get $a5) (i32x4.dot_i16x8_s (i16x8.extend_high_i8x16_u (local.get $z)) (v128.load32_splat (i32.add (local.get $wp) (local.get $o5))))))
                (local.set $z (i8x16.shr_u (local.get $y1) (i32.const 4)))
                (local.set $a6 (i32x4.add (local.get $a6) (i32x4.dot_i16x8_s (i16x8.extend_low_i8x16_u (local.get $z)) (v128.load32_splat (i32.add (local.get $wp) (local.get $o6))))))
                (local.set $a7 (i32x4.add (local.get $a7) (i32x4.dot_i16x8_s (i16x8.extend_high_i8x16_u (local.get $z)) (v128.load32_splat (i32.add (local.get $wp) (local.get $o7))))))
                (local.set $x (i32.add (local.get $x) (local.get $rowBytes2)))
                (local.set $wp (i32.add (local.get $wp) (i32.const 4)))
                (local.set $pp (i32.add (local.get $pp) (i32.const 1)))
                (br $n4pLoop)))
              (v128.store (i32.add (local.get $vacc) (i32.shl (local.get $cb) (i32.const 2))) (f32x4.add (v128.load (i32.add (local.get $vacc) (i32.shl (local.get $cb) (i32.const 2)))) (f32x4.mul (local.get $sa) (f32x4.convert_i32x4_s (local.get $a0)))))
              (v128.store (i32.add (local.get $vacc) (i32.shl (i32.add (local.get $cb) (i32.const 4)) (i32.const 2))) (f32x4.add (v128.load (i32.add (local.get $vacc) (i32.shl (i32.add (local.get $cb) (i32.const 4)) (i32.const 2)))) (f32x4.mul (local.get $sa) (f32x4.convert_i32x4_s (local.get $a1)))))
              (v128.store (i32.add (local.get $vacc) (i32.shl (i32.add (local.get $cb) (i32.const 8)) (i32.const 2))) (f32x4.add (v128.load (i32.add (local.get $vacc) (i32.shl (i32.add (local.get $cb) (i32.const 8)) (i32.const 2)))) (f32x4.mul (local.get $sa) (f32x4.convert_i32x4_s (local.get $a2)))))
              (v128.store (i32.add (local.get $vacc) (i32.shl (i32.add (local.get $cb) (i32.const 12)) (i32.const 2))) (f32x4.add (v128.load (i32.add (local.get $vacc) (i32.shl (i32.add (local.get $cb) (i32.const 12)) (i32.const 2)))) (f32x4.mul (local.get $sa) (f32x4.convert_i32x4_s (local.get $a3)))))
              (v128.store (i32.add (local.get $vacc) (i32.shl (i32.add (local.get $cb) (i32.const 16)) (i32.const 2))) (f32x4.add (v128.load (i32.add (local.get $vacc) (i32.shl (i32.add (local.get $cb) (i32.const 16)) (i32.const 2)))) (f32x4.mul (local.get $sa) (f32x4.convert_i32x4_s (local.get $a4)))))
              (v128.store (i32.add (local.get $vacc) (i32.shl (i32.add (local.get $cb) (i32.const 20)) (i32.const 2))) (f32x4.add (v128.load (i32.add (local.get $vacc) (i32.shl (i32.add (local.get $cb) (i32.const 20)) (i32.const 2)))) (f32x4.mul (local.get $sa) (f32x4.convert_i32x4_s (local.get $a5)))))
              (v128.store (i32.add (local.get $vacc) (i32.shl (i32.add (local.get $cb) (i32.const 24)) (i32.const 2))) (f32x4.add (v128.load (i32.add (local.get $vacc) (i32.shl (i32.add (local.get $cb) (i32.const 24)) (i32.const 2)))) (f32x4.mul (local.get $sa) (f32x4.convert_i32x4_s (local.get $a6)))))
              (v128.store (i32.add (local.get $vacc) (i32.shl (i32.add (local.get $cb) (i32.const 28)) (i32.const 2))) (f32x4.add (v128.load (i32.add (local.get $vacc) (i32.shl (i32.add (local.get $cb) (i32.const 28)) (i32.const 2)))) (f32x4.mul (local.get $sa) (f32x4.convert_i32x4_s (local.get $a7)))))
              (local.set $cb (i32.add (local.get $cb) (i32.const 32)))
              (br $n4Loop)))
          ))
        ;; The zero points: vacc[c] -= zb[group of c].
        (local.set $cb (i32.const 0))
        (block $zDone (loop $zLoop
          (br_if $zDone (i32.ge_u (local.get $cb) (local.get $hsPad)))
          (v128.store (i32.add (local.get $vacc) (i32.shl (local.get $cb) (i32.const 2)))
            (f32x4.sub (v128.load (i32.add (local.get $vacc) (i32.shl (local.get $cb) (i32.const 2))))
              (f32x4.splat (f32.load (i32.add (local.get $zb) (i32.shl (i32.shr_u (local.get $cb) (local.get $lg)) (i32.const 2)))))))
          (local.set $cb (i32.add (local.get $cb) (i32.const 4)))
          (br $zLoop))))
      (else
        (if (i32.ge_u (local.get $lg) (i32.const 4))
          (then
            (local.set $cb (i32.const 0))
            (block $w8Done (loop $w8Loop
              (br_if $w8Done (i32.ge_u (local.get $cb) (local.get $hsPad)))
              (local.set $a0 (v128.const i32x4 0 0 0 0))
              (local.set $a1 (v128.const i32x4 0 0 0 0))
              (local.set $a2 (v128.const i32x4 0 0 0 0))
              (local.set $a3 (v128.const i32x4 0 0 0 0))
              (local.set $x (i32.add (local.get $pair0) (i32.shl (local.get $cb) (i32.const 1))))
              (local.set $wp (i32.add (local.get $wtab) (i32.mul (i32.shr_u (local.get $cb) (local.get $lg)) (i32.const 80))))
              (local.set $pp (i32.const 0))
              (block $w8pDone (loop $w8pLoop
                (br_if $w8pDone (i32.ge_u (local.get $pp) (local.get $npairs)))
                (local.set $wv0 (v128.load32_splat (local.get $wp)))
                (local.set $a0 (i32x4.add (local.get $a0) (i32x4.dot_i16x8_s (v128.load8x8_s (local.get $x)) (local.get $wv0))))
                (local.set $a1 (i32x4.add (local.get $a1) (i32x4.dot_i16x8_s (v128.load8x8_s offset=8 (local.get $x)) (local.get $wv0))))
                (local.set $a2 (i32x4.add (local.get $a2) (i32x4.dot_i16x8_s (v128.load8x8_s offset=16 (local.get $x)) (local.get $wv0))))
                (local.set $a3 (i32x4.add (local.get $a3) (i32x4.dot_i16x8_s (v128.load8x8_s offset=24 (local.get $x)) (local.get $wv0))))
                (local.set $x (i32.add (local.get $x) (local.get $rowBytes2)))
                (local.set $wp (i32.add (local.get $wp) (i32.const 4)))
                (local.set $pp (i32.add (local.get $pp) (i32.const 1)))
                (br $w8pLoop)))
              (v128.store (i32.add (local.get $vacc) (i32.shl (local.get $cb) (i32.const 2))) (f32x4.add (v128.load (i32.add (local.get $vacc) (i32.shl (local.get $cb) (i32.const 2)))) (f32x4.mul (local.get $sa) (f32x4.convert_i32x4_s (local.get $a0)))))
              (v128.store (i32.add (local.get $vacc) (i32.shl (i32.add (local.get $cb) (i32.const 4)) (i32.const 2))) (f32x4.add (v128.load (i32.add (local.get $vacc) (i32.shl (i32.add (local.get $cb) (i32.const 4)) (i32.const 2)))) (f32x4.mul (local.get $sa) (f32x4.convert_i32x4_s (local.get $a1)))))
              (v128.store (i32.add (local.get $vacc) (i32.shl (i32.add (local.get $cb) (i32.const 8)) (i32.const 2))) (f32x4.add (v128.load (i32.add (local.get $vacc) (i32.shl (i32.add (local.get $cb) (i32.const 8)) (i32.const 2)))) (f32x4.mul (local.get $sa) (f32x4.convert_i32x4_s (local.get $a2)))))
              (v128.store (i32.add (local.get $vacc) (i32.shl (i32.add (local.get $cb) (i32.const 12)) (i32.const 2))) (f32x4.add (v128.load (i32.add (local.get $vacc) (i32.shl (i32.add (local.get $cb) (i32.const 12)) (i32.const 2)))) (f32x4.mul (local.get $sa) (f32x4.convert_i32x4_s (local.get $a3)))))
              (local.set $cb (i32.add (local.get $cb) (i32.const 16)))
              (br $w8Loop)))
          )
          (else
            (local.set $cb (i32.const 0))
            (block $n8Done (loop $n8Loop
              (br_if $n8Done (i32.ge_u (local.get $cb) (local.get $hsPad)))
              (local.set $a0 (v128.const i32x4 0 0 0 0))
              (local.set $a1 (v128.const i32x4 0 0 0 0))
              (local.set $a2 (v128.const i32x4 0 0 0 0))
              (local.set $a3 (v128.const i32x4 0 0 0 0))
              (local.set $x (i32.add (local.get $pair0) (i32.shl (local.get $cb) (i32.const 1))))
              (local.set $o0 (i32.mul (i32.shr_u (local.get $cb) (local.get $lg)) (i32.const 80)))
              (local.set $o1 (i32.mul (i32.shr_u (i32.add (local.get $cb) (i32.const 4)) (local.get $lg)) (i32.const 80)))
              (local.set $o2 (i32.mul (i32.shr_u (i32.add (local.get $cb) (i32.const 8)) (local.get $lg)) (i32.const 80)))
              (local.set $o3 (i32.mul (i32.shr_u (i32.add (local.get $cb) (i32.const 12)) (local.get $lg)) (i32.const 80)))
              (local.set $wp (local.get $wtab))
              (local.set $pp (i32.const 0))
              (block $n8pDone (loop $n8pLoop
                (br_if $n8pDone (i32.ge_u (local.get $pp) (local.get $npairs)))
                (local.set $a0 (i32x4.add (local.get $a0) (i32x4.dot_i16x8_s (v128.load8x8_s (local.get $x)) (v128.load32_splat (i32.add (local.get $wp) (local.get $o0))))))
                (local.set $a1 (i32x4.add (local.get $a1) (i32x4.dot_i16x8_s (v128.load8x8_s offset=8 (local.get $x)) (v128.load32_splat (i32.add (local.get $wp) (local.get $o1))))))
                (local.set $a2 (i32x4.add (local.get $a2) (i32x4.dot_i16x8_s (v128.load8x8_s offset=16 (local.get $x)) (v128.load32_splat (i32.add (local.get $wp) (local.get $o2))))))
                (local.set $a3 (i32x4.add (local.get $a3) (i32x4.dot_i16x8_s (v128.load8x8_s offset=24 (local.get $x)) (v128.load32_splat (i32.add (local.get $wp) (local.get $o3))))))
                (local.set $x (i32.add (local.get $x) (local.get $rowBytes2)))
                (local.set $wp (i32.add (local.get $wp) (i32.const 4)))
                (local.set $pp (i32.add (local.get $pp) (i32.const 1)))
                (br $n8pLoop)))
              (v128.store (i32.add (local.get $vacc) (i32.shl (local.get $cb) (i32.const 2))) (f32x4.add (v128.load (i32.add (local.get $vacc) (i32.shl (local.get $cb) (i32.const 2)))) (f32x4.mul (local.get $sa) (f32x4.convert_i32x4_s (local.get $a0)))))
              (v128.store (i32.add (local.get $vacc) (i32.shl (i32.add (local.get $cb) (i32.const 4)) (i32.const 2))) (f32x4.add (v128.load (i32.add (local.get $vacc) (i32.shl (i32.add (local.get $cb) (i32.const 4)) (i32.const 2)))) (f32x4.mul (local.get $sa) (f32x4.convert_i32x4_s (local.get $a1)))))
              (v128.store (i32.add (local.get $vacc) (i32.shl (i32.add (local.get $cb) (i32.const 8)) (i32.const 2))) (f32x4.add (v128.load (i32.add (local.get $vacc) (i32.shl (i32.add (local.get $cb) (i32.const 8)) (i32.const 2)))) (f32x4.mul (local.get $sa) (f32x4.convert_i32x4_s (local.get $a2)))))
              (v128.store (i32.add (local.get $vacc) (i32.shl (i32.add (local.get $cb) (i32.const 12)) (i32.const 2))) (f32x4.add (v128.load (i32.add (local.get $vacc) (i32.shl (i32.add (local.get $cb) (i32.const 12)) (i32.const 2)))) (f32x4.mul (local.get $sa) (f32x4.convert_i32x4_s (local.get $a3)))))
              (local.set $cb (i32.add (local.get $cb) (i32.const 16)))
              (br $n8Loop)))
          )))))

  (func (export "attend")
    (param $q i32) (param $qBatch i32) (param $qRow i32)
    (param $out i32) (param $outBatch i32) (param $outRow i32)
    (param $k i32) (param $v i32) (param $kvHead i32) (param $kvRow i32)
    (param $runs i32) (param $runBatch i32) (param $runCounts i32) (param $qStart i32)
    (param $B i32) (param $T i32) (param $nh i32) (param $group i32) (param $hs i32)
    (param $window i32) (param $scale f32) (param $scores i32) (param $qd i32)
    (local $b i32) (local $h i32) (local $i i32) (local $r i32) (local $p i32)
    (local $hsBytes i32) (local $hsVecBytes i32) (local $vec i32)
    (local $rb i32) (local $nRuns i32) (local $P0 i32) (local $P i32) (local $kvOff i32)
    (local $qr i32) (local $or i32) (local $e i32) (local $cnt i32) (local $n i32) (local $n4 i32)
    (local $sp i32) (local $at i32) (local $slot i32) (local $fl i32)
    (local $qpad i32) (local $vacc i32) (local $hsPad i32)
    (local $mv v128) (local $sv v128) (local $wv v128)
    (local $m f32) (local $sum f32) (local $w f32) (local $inv f32)
    (local.set $hsBytes (i32.shl (local.get $hs) (i32.const 2)))
    (local.set $hsVecBytes (i32.shl (i32.and (local.get $hs) (i32.const -4)) (i32.const 2)))
    ;; Keys go 4 at a time when a row is whole vectors (hs % 4 == 0); the rest one at a time.
    (local.set $vec (i32.eq (local.get $hsVecBytes) (local.get $hsBytes)))
    (if (local.get $qd)
      (then
        (local.set $hsPad (i32.load offset=36 (local.get $qd)))
        (local.set $qpad (i32.load offset=44 (local.get $qd)))
        (local.set $vacc (i32.load offset=52 (local.get $qd)))))
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

          ;; Quantized runs read the query row from a copy zero-padded to whole SIMD blocks.
          (if (local.get $qd)
            (then (call $pad_copy (local.get $qpad) (local.get $qr) (local.get $hsBytes)
              (i32.shl (local.get $hsPad) (i32.const 2)))))

          ;; Pass 1: the scores of every visible key, run after run, and their maximum.
          (local.set $n (i32.const 0))
          (local.set $m (f32.const -inf))
          (local.set $r (i32.const 0))
          (block $r1Done (loop $r1Loop
            (br_if $r1Done (i32.ge_u (local.get $r) (local.get $nRuns)))
            (local.set $e (i32.add (local.get $rb) (i32.shl (local.get $r) (i32.const 4))))
            (local.set $fl (i32.load offset=12 (local.get $e)))
            (local.set $cnt
              (call $clip (i32.load offset=8 (local.get $e)) (i32.load offset=4 (local.get $e))
                (i32.and (local.get $fl) (i32.const 1)) (local.get $P) (local.get $window)))
            (if (local.get $cnt)
              (then
                (if (i32.and (local.get $fl) (i32.const 2))
                  (then
                    (local.set $m
                      (call $score_qrun (local.get $qd) (i32.div_u (local.get $h) (local.get $group))
                        (i32.load (local.get $e))
                        (i32.sub (global.get $lo) (i32.load offset=8 (local.get $e)))
                        (local.get $cnt)
                        (i32.add (local.get $scores) (i32.shl (local.get $n) (i32.const 2)))
                        (local.get $scale) (local.get $m))))
                  (else
                    (local.set $slot
                      (i32.add
                        (i32.add (i32.load (local.get $e)) (local.get $kvOff))
                        (i32.mul (i32.sub (global.get $lo) (i32.load offset=8 (local.get $e))) (local.get $kvRow))))
                    (local.set $m
                      (call $score_run (local.get $qr) (i32.add (local.get $k) (local.get $slot))
                        (local.get $cnt) (local.get $kvRow) (local.get $hsBytes) (local.get $hsVecBytes)
                        (local.get $vec) (i32.add (local.get $scores) (i32.shl (local.get $n) (i32.const 2)))
                        (local.get $scale) (local.get $m)))))
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
          ;; Quantized runs accumulate into a padded row of their own, added in below.
          (if (local.get $qd)
            (then (call $pad_copy (local.get $vacc) (i32.const 0) (i32.const 0)
              (i32.shl (local.get $hsPad) (i32.const 2)))))
          (local.set $n (i32.const 0))
          (local.set $r (i32.const 0))
          (block $r3Done (loop $r3Loop
            (br_if $r3Done (i32.ge_u (local.get $r) (local.get $nRuns)))
            (local.set $e (i32.add (local.get $rb) (i32.shl (local.get $r) (i32.const 4))))
            (local.set $fl (i32.load offset=12 (local.get $e)))
            (local.set $cnt
              (call $clip (i32.load offset=8 (local.get $e)) (i32.load offset=4 (local.get $e))
                (i32.and (local.get $fl) (i32.const 1)) (local.get $P) (local.get $window)))
            (if (local.get $cnt)
              (then
                (if (i32.and (local.get $fl) (i32.const 2))
                  (then
                    (call $value_qrun (local.get $qd) (i32.div_u (local.get $h) (local.get $group))
                      (i32.load (local.get $e))
                      (i32.sub (global.get $lo) (i32.load offset=8 (local.get $e)))
                      (local.get $cnt)
                      (i32.add (local.get $scores) (i32.shl (local.get $n) (i32.const 2)))))
                  (else
                    (local.set $slot
                      (i32.add
                        (i32.add (i32.load (local.get $e)) (local.get $kvOff))
                        (i32.mul (i32.sub (global.get $lo) (i32.load offset=8 (local.get $e))) (local.get $kvRow))))
                    (call $value_run (local.get $or) (i32.add (local.get $v) (local.get $slot))
                      (local.get $cnt) (local.get $kvRow) (local.get $hsBytes) (local.get $hsVecBytes)
                      (local.get $vec) (i32.add (local.get $scores) (i32.shl (local.get $n) (i32.const 2))))))
                (local.set $n (i32.add (local.get $n) (local.get $cnt)))))
            (local.set $r (i32.add (local.get $r) (i32.const 1)))
            (br $r3Loop)))
          (if (local.get $qd)
            (then
              (local.set $at (i32.const 0))
              (block $aDone (loop $aLoop
                (br_if $aDone (i32.ge_u (local.get $at) (local.get $hsBytes)))
                (f32.store (i32.add (local.get $or) (local.get $at))
                  (f32.add (f32.load (i32.add (local.get $or) (local.get $at)))
                    (f32.load (i32.add (local.get $vacc) (local.get $at)))))
                (local.set $at (i32.add (local.get $at) (i32.const 4)))
                (br $aLoop)))))
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
