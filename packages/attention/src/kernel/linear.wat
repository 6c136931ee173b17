;; kvkit's matrix-vector kernel for Linear layers on single-row inputs (decode steps): y = x W + b
;; with W the layer's `(in, out)` weight, read in place in tfjs-wasm's own memory (the weight
;; tensor XNNPACK multiplies too: no second copy). Assembled by scripts/build-kernels.mjs into
;; linear-wasm.ts (a test fails if the committed module is stale); linear-kernel.ts registers it.
;;
;; The weight streams through once, four rows at a time, each row read front to back: the
;; partial sums of a chunk of at most 4096 outputs stay in L1 while four weight rows go by, so
;; the loop runs at the memory's read bandwidth. Addresses are bytes; sizes are floats.
(module
  (import "env" "memory" (memory 1))

  ;; y[0..n) += a0*r0[..] + a1*r1[..] + a2*r2[..] + a3*r3[..], 8 floats a step, then the tail.
  (func $axpy4 (param $y i32) (param $r0 i32) (param $r1 i32) (param $r2 i32) (param $r3 i32)
    (param $a0 f32) (param $a1 f32) (param $a2 f32) (param $a3 f32) (param $n i32)
    (local $end i32) (local $vend i32) (local $v0 v128) (local $v1 v128) (local $v2 v128) (local $v3 v128)
    (local.set $end (i32.add (local.get $y) (i32.shl (local.get $n) (i32.const 2))))
    (local.set $vend (i32.add (local.get $y) (i32.shl (i32.and (local.get $n) (i32.const -8)) (i32.const 2))))
    (local.set $v0 (f32x4.splat (local.get $a0)))
    (local.set $v1 (f32x4.splat (local.get $a1)))
    (local.set $v2 (f32x4.splat (local.get $a2)))
    (local.set $v3 (f32x4.splat (local.get $a3)))
    (block $vDone (loop $vLoop
      (br_if $vDone (i32.ge_u (local.get $y) (local.get $vend)))
      (v128.store (local.get $y)
        (f32x4.add (v128.load (local.get $y))
          (f32x4.add
            (f32x4.add (f32x4.mul (local.get $v0) (v128.load (local.get $r0))) (f32x4.mul (local.get $v1) (v128.load (local.get $r1))))
            (f32x4.add (f32x4.mul (local.get $v2) (v128.load (local.get $r2))) (f32x4.mul (local.get $v3) (v128.load (local.get $r3)))))))
      (v128.store offset=16 (local.get $y)
        (f32x4.add (v128.load offset=16 (local.get $y))
          (f32x4.add
            (f32x4.add (f32x4.mul (local.get $v0) (v128.load offset=16 (local.get $r0))) (f32x4.mul (local.get $v1) (v128.load offset=16 (local.get $r1))))
            (f32x4.add (f32x4.mul (local.get $v2) (v128.load offset=16 (local.get $r2))) (f32x4.mul (local.get $v3) (v128.load offset=16 (local.get $r3)))))))
      (local.set $y (i32.add (local.get $y) (i32.const 32)))
      (local.set $r0 (i32.add (local.get $r0) (i32.const 32)))
      (local.set $r1 (i32.add (local.get $r1) (i32.const 32)))
      (local.set $r2 (i32.add (local.get $r2) (i32.const 32)))
      (local.set $r3 (i32.add (local.get $r3) (i32.const 32)))
      (br $vLoop)))
    (block $sDone (loop $sLoop
      (br_if $sDone (i32.ge_u (local.get $y) (local.get $end)))
      (f32.store (local.get $y)
        (f32.add (f32.load (local.get $y))
          (f32.add
            (f32.add (f32.mul (local.get $a0) (f32.load (local.get $r0))) (f32.mul (local.get $a1) (f32.load (local.get $r1))))
            (f32.add (f32.mul (local.get $a2) (f32.load (local.get $r2))) (f32.mul (local.get $a3) (f32.load (local.get $r3)))))))
      (local.set $y (i32.add (local.get $y) (i32.const 4)))
      (local.set $r0 (i32.add (local.get $r0) (i32.const 4)))
      (local.set $r1 (i32.add (local.get $r1) (i32.const 4)))
      (local.set $r2 (i32.add (local.get $r2) (i32.const 4)))
      (local.set $r3 (i32.add (local.get $r3) (i32.const 4)))
      (br $sLoop))))

  ;; y[0..n) += a*r[..], for the last K % 4 rows (a separate loop: 0 * an infinite weight of a
  ;; padding row would make NaN where a matrix product makes none).
  (func $axpy1 (param $y i32) (param $r i32) (param $a f32) (param $n i32)
    (local $end i32) (local $vend i32) (local $v v128)
    (local.set $end (i32.add (local.get $y) (i32.shl (local.get $n) (i32.const 2))))
    (local.set $vend (i32.add (local.get $y) (i32.shl (i32.and (local.get $n) (i32.const -4)) (i32.const 2))))
    (local.set $v (f32x4.splat (local.get $a)))
    (block $vDone (loop $vLoop
      (br_if $vDone (i32.ge_u (local.get $y) (local.get $vend)))
      (v128.store (local.get $y) (f32x4.add (v128.load (local.get $y)) (f32x4.mul (local.get $v) (v128.load (local.get $r)))))
      (local.set $y (i32.add (local.get $y) (i32.const 16)))
      (local.set $r (i32.add (local.get $r) (i32.const 16)))
      (br $vLoop)))
    (block $sDone (loop $sLoop
      (br_if $sDone (i32.ge_u (local.get $y) (local.get $end)))
      (f32.store (local.get $y) (f32.add (f32.load (local.get $y)) (f32.mul (local.get $a) (f32.load (local.get $r)))))
      (local.set $y (i32.add (local.get $y) (i32.const 4)))
      (local.set $r (i32.add (local.get $r) (i32.const 4)))
      (br $sLoop))))

  ;; y = x W + b (b = 0 when $b is -1): x (K), W (K x N) row-major, y (N).
  (func (export "gemv") (param $x i32) (param $w i32) (param $b i32) (param $y i32) (param $K i32) (param $N i32)
    (local $c i32) (local $n i32) (local $k i32) (local $row i32) (local $yc i32) (local $kq i32) (local $i i32)
    (local.set $row (i32.shl (local.get $N) (i32.const 2)))
    (local.set $kq (i32.and (local.get $K) (i32.const -4)))
    (block $cDone (loop $cLoop
      (br_if $cDone (i32.ge_u (local.get $c) (local.get $N)))
      (local.set $n (i32.sub (local.get $N) (local.get $c)))
      (if (i32.gt_u (local.get $n) (i32.const 4096)) (then (local.set $n (i32.const 4096))))
      (local.set $yc (i32.add (local.get $y) (i32.shl (local.get $c) (i32.const 2))))
      ;; The chunk starts as the bias (or zeros).
      (if (i32.ge_s (local.get $b) (i32.const 0))
        (then (memory.copy (local.get $yc) (i32.add (local.get $b) (i32.shl (local.get $c) (i32.const 2))) (i32.shl (local.get $n) (i32.const 2))))
        (else (memory.fill (local.get $yc) (i32.const 0) (i32.shl (local.get $n) (i32.const 2)))))
      (local.set $k (i32.const 0))
      (block $kDone (loop $kLoop
        (br_if $kDone (i32.ge_u (local.get $k) (local.get $kq)))
        (local.set $i (i32.add (local.get $w) (i32.add (i32.mul (local.get $k) (local.get $row)) (i32.shl (local.get $c) (i32.const 2)))))
        (call $axpy4 (local.get $yc)
          (local.get $i)
          (i32.add (local.get $i) (local.get $row))
          (i32.add (local.get $i) (i32.shl (local.get $row) (i32.const 1)))
          (i32.add (local.get $i) (i32.mul (local.get $row) (i32.const 3)))
          (f32.load (i32.add (local.get $x) (i32.shl (local.get $k) (i32.const 2))))
          (f32.load offset=4 (i32.add (local.get $x) (i32.shl (local.get $k) (i32.const 2))))
          (f32.load offset=8 (i32.add (local.get $x) (i32.shl (local.get $k) (i32.const 2))))
          (f32.load offset=12 (i32.add (local.get $x) (i32.shl (local.get $k) (i32.const 2))))
          (local.get $n))
        (local.set $k (i32.add (local.get $k) (i32.const 4)))
        (br $kLoop)))
      ;; The last K % 4 rows, one at a time.
      (block $tDone (loop $tLoop
        (br_if $tDone (i32.ge_u (local.get $k) (local.get $K)))
        (local.set $i (i32.add (local.get $w) (i32.add (i32.mul (local.get $k) (local.get $row)) (i32.shl (local.get $c) (i32.const 2)))))
        (call $axpy1 (local.get $yc) (local.get $i)
          (f32.load (i32.add (local.get $x) (i32.shl (local.get $k) (i32.const 2))))
          (local.get $n))
        (local.set $k (i32.add (local.get $k) (i32.const 1)))
        (br $tLoop)))
      (local.set $c (i32.add (local.get $c) (local.get $n)))
      (br $cLoop)))))
