# SPDX-License-Identifier: MIT
#
# Plots for docs/performance.md from the data the benchmarks leave in
# $BENCH_DATA_DIR.  Run as: gnuplot -e "data='DIR'; out='DIR'" plots.gp
# (make plots does it).

set terminal pngcairo size 900,540 font ",11"
set grid

# Interrupt latency: one CDF per path, microseconds on a log axis.
set output out . '/perf-irq-latency.png'
set title 'Interrupt latency: device fires -> handler runs (CDF)'
set xlabel 'latency (us, log scale)'
set ylabel 'fraction of samples'
set logscale x
set key bottom right
plot data . '/lat-eventfd-thread.dat' using 1:2 with lines lw 2 \
         title 'eventfd wake-up, two threads (baseline)', \
     data . '/lat-eventfd-process.dat' using 1:2 with lines lw 2 \
         title 'eventfd wake-up, two processes (baseline)', \
     data . '/lat-callback.dat' using 1:2 with lines lw 2 \
         title 'libdext callback over dextd', \
     data . '/lat-fd.dat' using 1:2 with lines lw 2 \
         title 'libdext pollable fd over dextd'
unset logscale x

# DMA region table: cost per register+unregister vs live regions.
set output out . '/perf-dma-table.png'
set title 'DMA RegisterDMARegion + UnregisterDMARegion vs live regions'
set xlabel 'live regions on the user client (log scale)'
set ylabel 'ns per register + unregister'
set logscale x 2
set yrange [0:*]
set key top left
plot '< grep "^inproc" ' . data . '/dma-table.dat' using 2:3 \
         with linespoints lw 2 pt 7 title 'in-process (core cost)', \
     '< grep "^unix" ' . data . '/dma-table.dat' using 2:3 \
         with linespoints lw 2 pt 5 title 'over dextd (client view)'
unset logscale x
set yrange [*:*]

# Call round trip: one ConfigRead over dextd vs a bare request/reply (CDF).
set output out . '/perf-roundtrip.png'
set title 'Call round trip, one vCPU (CDF)'
set xlabel 'round trip (us, log scale)'
set ylabel 'fraction of samples'
set logscale x
set key bottom right
plot data . '/rt-bare.dat' using 1:2 with lines lw 2 \
         title 'bare SEQPACKET request/reply (baseline)', \
     data . '/rt-unix.dat' using 1:2 with lines lw 2 \
         title 'libdext ConfigRead over dextd'
unset logscale x

# Device DMA into client memory by transfer size, each path vs memcpy.
set output out . '/perf-dma-sizes.png'
set title 'Device DMA into client memory by size (warm)'
set xlabel 'transfer size (bytes, log scale)'
set ylabel 'MB/s (log scale)'
set logscale x 2
set logscale y
set xtics ('4 KiB' 4096, '16 KiB' 16384, '64 KiB' 65536, '256 KiB' 262144, \
           '1 MiB' 1048576, '4 MiB' 4194304, '16 MiB' 16777216, \
           '64 MiB' 67108864)
set termoption noenhanced
set key bottom right
plot '< grep "^unix_shared" ' . data . '/dma-sizes.dat' using 2:4 \
         with linespoints lw 2 pt 1 title 'memcpy in the client (baseline)', \
     '< grep "^unix_shared" ' . data . '/dma-sizes.dat' using 2:3 \
         with linespoints lw 2 pt 7 title 'over dextd, shared memory (mapped from 64 KiB)', \
     '< grep "^unix_private" ' . data . '/dma-sizes.dat' using 2:3 \
         with linespoints lw 2 pt 5 title 'over dextd, private memory (process_vm)', \
     '< grep "^inproc_private" ' . data . '/dma-sizes.dat' using 2:3 \
         with linespoints lw 2 pt 9 title 'in process, private memory'
