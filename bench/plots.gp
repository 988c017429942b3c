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
