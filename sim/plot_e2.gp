# P99 TTFT per class against offered load, with and without token pools (E2).
# Usage: gnuplot -e "dir='sim/results/e2'" sim/plot_e2.gp  -> $dir/latency_vs_load.svg
set terminal svg size 900,500 dynamic background rgb 'white'
set output dir.'/latency_vs_load.svg'
set datafile separator ','
set title 'E2: P99 TTFT of completed requests vs offered load (x about 30 req/s of elastic + spot)'
set xlabel 'offered load factor'
set ylabel 'P99 TTFT (s)'
set logscale y
set key outside right
set grid
tp = dir.'/latency_vs_load.csv'
plot '< grep token_pools '.tp using 1:3 with linespoints lw 2 title 'guaranteed, token pools', \
     '< grep token_pools '.tp using 1:4 with linespoints lw 2 title 'elastic, token pools', \
     '< grep ,none, '.tp using 1:3 with linespoints lw 2 dt 2 title 'guaranteed, no admission', \
     '< grep ,none, '.tp using 1:5 with linespoints lw 2 dt 2 title 'spot, no admission'
