# Served-token shares and debt over time for E3 (sim/scenarios/e3_debt_fair_share.yaml).
# Usage: gnuplot -e "dir='sim/results/e3_debt_fair_share'" sim/plot_e3.gp  -> $dir/shares.svg
set terminal svg size 900,600 dynamic background rgb 'white'
set output dir.'/shares.svg'
set datafile separator ','
set multiplot layout 2,1 \
  title 'E3: replica fails at 300 s, back at 700 s; analytics joins at 900 s'
set ylabel 'share of served tokens (10 s)'
set yrange [0:1]
set key outside right
set grid
set arrow from 300, graph 0 to 300, graph 1 nohead dt 2
set arrow from 700, graph 0 to 700, graph 1 nohead dt 2
set arrow from 900, graph 0 to 900, graph 1 nohead dt 2
plot dir.'/timeseries.csv' every ::1 using 1:5 with lines lw 2 title 'elastic-copilot', \
     '' every ::1 using 1:6 with lines lw 2 title 'elastic-synth', \
     '' every ::1 using 1:7 with lines lw 2 title 'analytics-reports'
set ylabel 'debt (tokens, summed)'
set yrange [-20000:40000]
set xlabel 'virtual time (s)'
plot dir.'/timeseries.csv' every ::1 using 1:8 with lines lw 2 title 'elastic-copilot', \
     '' every ::1 using 1:9 with lines lw 2 title 'elastic-synth', \
     '' every ::1 using 1:10 with lines lw 2 title 'analytics-reports'
unset multiplot
