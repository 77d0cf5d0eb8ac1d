;; Selective-scan recurrence and gate of the Mamba mixer (spec §6 "Mamba v1 (S6) computation"
;; steps 5–6) for the native CPU head (lib/model/native_head.ts), 4 channels per f32x4 lane group:
;;
;;   h_t,n,c = dA_t,n,c · h_{t−1},n,c + du_t,c · B_t,n        (h_0 = 0)
;;   y_t,c   = (Σ_n C_t,n · h_t,n,c + D_c · u_t,c) · g_t,c    (g = SiLU(z))
;;
;; Layouts (f32, row-major, every pointer a byte offset into the imported memory, 16-byte aligned):
;;   dA (N, Ls, ns, di) = exp(Δ ⊗ A); du, u, g, y (N, Ls, di); B, C (N, Ls, ns); D (di);
;;   hs (ns, di) scratch. di must be a multiple of 4 (callers fall back to the TypeScript path
;;   otherwise). f32 operations in the reference's order: each product and sum rounded to f32.
;;
;; TypeScript reference: scanRecurrence + gate in lib/model/native_head.ts.
;; Assembled by scripts/build_wasm.ts (npm:wabt) into lib/model/scan_wasm.ts; the test
;; tests/scan_wasm_test.ts checks that the embedded bytes are this file's.
(module
  (import "env" "memory" (memory 1))
  (func (export "scan")
    (param $dA i32) (param $du i32) (param $B i32) (param $C i32)
    (param $u i32) (param $g i32) (param $D i32) (param $y i32) (param $hs i32)
    (param $N i32) (param $Ls i32) (param $di i32) (param $ns i32)
    (local $rows i32) (local $r i32) (local $rowBytes i32) (local $hsBytes i32)
    (local $pa i32) (local $px i32) (local $pb i32) (local $pc i32)
    (local $cb i32) (local $n i32) (local $off i32) (local $i i32)
    (local $x v128) (local $acc v128) (local $v v128)
    (local.set $rowBytes (i32.shl (local.get $di) (i32.const 2)))
    (local.set $hsBytes (i32.mul (local.get $rowBytes) (local.get $ns)))
    (local.set $rows (i32.mul (local.get $N) (local.get $Ls)))
    (local.set $r (i32.const 0))
    (block $done
      (loop $row
        (br_if $done (i32.ge_u (local.get $r) (local.get $rows)))
        ;; a new sequence starts every Ls rows: h ← 0
        (if (i32.eqz (i32.rem_u (local.get $r) (local.get $Ls)))
          (then (memory.fill (local.get $hs) (i32.const 0) (local.get $hsBytes))))
        (local.set $pa (i32.add (local.get $dA) (i32.mul (local.get $r) (local.get $hsBytes))))
        (local.set $px (i32.mul (local.get $r) (local.get $rowBytes)))
        (local.set $pb (i32.add (local.get $B)
          (i32.shl (i32.mul (local.get $r) (local.get $ns)) (i32.const 2))))
        (local.set $pc (i32.add (local.get $C)
          (i32.shl (i32.mul (local.get $r) (local.get $ns)) (i32.const 2))))
        (local.set $cb (i32.const 0))
        (block $cdone
          (loop $chan
            (br_if $cdone (i32.ge_u (local.get $cb) (local.get $rowBytes)))
            (local.set $i (i32.add (local.get $px) (local.get $cb)))
            (local.set $x (v128.load (i32.add (local.get $du) (local.get $i))))
            (local.set $acc (f32x4.splat (f32.const 0)))
            (local.set $n (i32.const 0))
            (local.set $off (local.get $cb))
            (block $ndone
              (loop $state
                (br_if $ndone (i32.ge_u (local.get $n) (local.get $ns)))
                ;; v = dA · h + du · B_n
                (local.set $v
                  (f32x4.add
                    (f32x4.mul
                      (v128.load (i32.add (local.get $pa) (local.get $off)))
                      (v128.load (i32.add (local.get $hs) (local.get $off))))
                    (f32x4.mul (local.get $x)
                      (f32x4.splat (f32.load
                        (i32.add (local.get $pb) (i32.shl (local.get $n) (i32.const 2))))))))
                (v128.store (i32.add (local.get $hs) (local.get $off)) (local.get $v))
                ;; acc += C_n · v
                (local.set $acc
                  (f32x4.add (local.get $acc)
                    (f32x4.mul
                      (f32x4.splat (f32.load
                        (i32.add (local.get $pc) (i32.shl (local.get $n) (i32.const 2)))))
                      (local.get $v))))
                (local.set $off (i32.add (local.get $off) (local.get $rowBytes)))
                (local.set $n (i32.add (local.get $n) (i32.const 1)))
                (br $state)))
            ;; y = (acc + D · u) · g
            (v128.store (i32.add (local.get $y) (local.get $i))
              (f32x4.mul
                (f32x4.add (local.get $acc)
                  (f32x4.mul
                    (v128.load (i32.add (local.get $D) (local.get $cb)))
                    (v128.load (i32.add (local.get $u) (local.get $i)))))
                (v128.load (i32.add (local.get $g) (local.get $i)))))
            (local.set $cb (i32.add (local.get $cb) (i32.const 16)))
            (br $chan)))
        (local.set $r (i32.add (local.get $r) (i32.const 1)))
        (br $row)))))
